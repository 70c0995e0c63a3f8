import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A scratch directory for one test, with a helper to write files into it. */
export async function scratch(): Promise<{ dir: string; write(name: string, text: string): Promise<string>; done(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-config-'));
  return {
    dir,
    async write(name, text) {
      const p = join(dir, name);
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, text);
      return p;
    },
    done: () => rm(dir, { recursive: true, force: true }),
  };
}
