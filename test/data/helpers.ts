/**
 * Shared parts of the end-to-end data tests: a pool of random bytes to cut writes from (so
 * a gigabyte of test data costs no gigabyte of randomBytes), a client session, and reading
 * a whole fork back in pipelined pieces.
 */
import { randomBytes } from 'node:crypto';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode, type AfpFork } from '../../src/client/afp-fork.js';
import type { AfpVolume } from '../../src/client/afp-volume.js';

export const MiB = 1024 * 1024;
export const USER = { name: 'tm', password: 'tm-secret' };
export const RW = ForkMode.Read | ForkMode.Write;

export class BytePool {
  private readonly pool = randomBytes(16 * MiB + 1);
  /** `n` (≤ 8 MiB) pseudo-random bytes; consecutive calls give different slices. */
  take(n: number): Buffer {
    const at = Math.floor(Math.random() * (this.pool.length - n));
    return this.pool.subarray(at, at + n);
  }
}

export async function session(host: string, port: number, volume = 'TimeMachine'): Promise<{ c: AfpClient; v: AfpVolume }> {
  const c = await AfpClient.connect(host, port);
  await c.login({ user: USER.name, password: USER.password });
  return { c, v: await c.openVolume(volume) };
}

/**
 * Compares the whole fork with `model`, reading `pieceBytes` at a time with `parallel`
 * reads in flight; returns the first differing offset, or -1.
 */
export async function firstDifference(fork: AfpFork, model: Buffer, length = model.length, pieceBytes = MiB, parallel = 4): Promise<number> {
  let first = -1;
  let next = 0;
  const worker = async () => {
    while (next < length) {
      const at = next;
      next += pieceBytes;
      const want = model.subarray(at, Math.min(at + pieceBytes, length));
      const got = (await fork.read(at, want.length)).data;
      if (!got.equals(want)) {
        let i = 0;
        while (i < want.length && got[i] === want[i]) i++;
        if (first === -1 || at + i < first) first = at + i;
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return first;
}
