import { hashPassword } from '../auth/password.js';
import { loadConfig } from '../config/load.js';
import { MetaConflictError, MetaNotFoundError, type MetaStore } from '../meta/meta-store.js';
import { openMetaStoreFromConfig } from '../meta/from-config.js';
import type { CliOptions } from './options.js';
import { readPassword } from './prompt.js';
import { configSource } from './serve.js';

const USAGE = 'usage: afp-gateway user add|passwd|del|list [NAME] [--config FILE | --data DIR]';

/** The DHX2 password field is 256 bytes; longer passwords could never be sent. */
const MAX_PASSWORD_BYTES = 255;

export async function user(opts: CliOptions): Promise<number> {
  const [action, name] = opts.positionals;
  if (!action || (action !== 'list' && !name)) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  const config = await loadConfig(configSource(opts));
  const meta = await openMetaStoreFromConfig(config.metadata);
  try {
    return await run(meta, action, name ?? '', config.auth.scrypt);
  } finally {
    await meta.close();
  }
}

async function newPassword(name: string): Promise<string> {
  const pw = await readPassword(`Password for ${name}: `, true);
  if (pw.length === 0) throw new Error('empty password refused');
  if (Buffer.byteLength(pw, 'utf8') > MAX_PASSWORD_BYTES) throw new Error(`passwords are limited to ${MAX_PASSWORD_BYTES} bytes by the AFP login methods`);
  return pw;
}

async function run(meta: MetaStore, action: string, name: string, scrypt: { N: number; r: number; p: number }): Promise<number> {
  switch (action) {
    case 'add': {
      if (!/^[^\s:/\\]{1,64}$/u.test(name)) throw new Error(`user name ${JSON.stringify(name)}: 1 to 64 characters, no spaces, ':', '/' or '\\'`);
      const pw = await newPassword(name);
      try {
        const u = await meta.createUser({ name, password: await hashPassword(pw, scrypt) });
        process.stdout.write(`added user ${u.name} (uid ${u.uid})\n`);
        if (Buffer.byteLength(pw) > 8) process.stdout.write('note: passwords over 8 bytes cannot be used with the "Cleartxt Passwrd" login method\n');
        return 0;
      } catch (e) {
        if (e instanceof MetaConflictError) throw new Error(`user ${name} already exists (use "user passwd" to change the password)`);
        throw e;
      }
    }
    case 'passwd': {
      const pw = await newPassword(name);
      try {
        await meta.setUserPassword(name, await hashPassword(pw, scrypt));
      } catch (e) {
        if (e instanceof MetaNotFoundError) throw new Error(`no user named ${name}`);
        throw e;
      }
      process.stdout.write(`password changed for ${name}\n`);
      return 0;
    }
    case 'del':
      if (!(await meta.deleteUser(name))) throw new Error(`no user named ${name}`);
      process.stdout.write(`deleted user ${name}\n`);
      return 0;
    case 'list': {
      const users = await meta.listUsers();
      if (users.length === 0) process.stdout.write('no users yet: add one with "afp-gateway user add NAME"\n');
      for (const u of users) process.stdout.write(`${u.name}\tuid=${u.uid}\tgid=${u.gid}\tcreated=${new Date(u.createdAt).toISOString()}\n`);
      return 0;
    }
    default:
      process.stderr.write(USAGE + '\n');
      return 2;
  }
}
