import { createInterface } from 'node:readline';

/** Reads all of stdin (scripts pipe passwords in: `echo pw | afp-gateway user add bob`). */
async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const nl = text.search(/\r?\n/);
  return nl < 0 ? text : text.slice(0, nl);
}

/** Prompts on the terminal without echo. */
export function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    // Echo off before the prompt shows: an answer typed the moment it appears must not be
    // echoed by a terminal still in cooked mode.
    stdin.setRawMode(true);
    process.stderr.write(question);
    stdin.resume();
    let value = '';
    const onData = (buf: Buffer): void => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          done();
          process.stderr.write('\n');
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          done();
          reject(new Error('cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on('data', onData);
  });
}

/**
 * A password from the terminal (asked twice when `confirm`) or, when stdin is not a
 * terminal, the first line of stdin. Never from argv, where `ps` would show it.
 */
export async function readPassword(question: string, confirm: boolean): Promise<string> {
  if (!process.stdin.isTTY) return readStdinLine();
  const first = await promptHidden(question);
  if (confirm) {
    const again = await promptHidden('Again: ');
    if (again !== first) throw new Error('passwords did not match');
  }
  return first;
}

/** One line from the terminal; Ctrl-C rejects with "cancelled" rather than leaving the promise hanging. */
export function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  return new Promise((resolve, reject) => {
    rl.once('SIGINT', () => {
      rl.close();
      process.stderr.write('\n');
      reject(new Error('cancelled'));
    });
    rl.question(question, (a) => {
      rl.close();
      resolve(a);
    });
  });
}

/**
 * Answers read one line at a time from a stdin that is not a terminal (a script piping
 * answers in). `next()` gives undefined once stdin has ended.
 */
export class StdinLines {
  private readonly rl = createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
  private readonly lines = this.rl[Symbol.asyncIterator]();
  private ended = false;

  async next(): Promise<string | undefined> {
    if (this.ended) return undefined;
    const r = await this.lines.next();
    if (r.done) this.ended = true;
    return r.done ? undefined : r.value;
  }

  /** Stops reading, so an open pipe that never ends does not keep the process alive. */
  close(): void {
    this.rl.close();
    process.stdin.destroy();
  }
}
