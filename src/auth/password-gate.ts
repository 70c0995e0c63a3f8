import PQueue from 'p-queue';

export class LoginBusyError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'LoginBusyError';
  }
}

export interface PasswordGateOptions {
  /** Password checks run at once (each is a scrypt: CPU and 32+ MiB of memory). */
  concurrency: number;
  /** Checks allowed to wait; beyond that, logins are refused at once. */
  maxWaiting: number;
}

/**
 * Bounds the password checks in flight. scrypt runs on libuv's small thread pool, which
 * file I/O shares: an unbounded login flood would starve every session's disk access.
 * One address gets one check at a time, and work for a connection that has gone away is
 * dropped before it starts.
 */
export class PasswordGate {
  private readonly queue: PQueue;
  private readonly inFlight = new Set<string>();

  constructor(private readonly opts: PasswordGateOptions) {
    this.queue = new PQueue({ concurrency: opts.concurrency });
  }

  async run<T>(address: string, alive: () => boolean, check: () => Promise<T>): Promise<T> {
    if (this.inFlight.has(address)) throw new LoginBusyError(`a login from ${address} is already being checked`);
    if (this.queue.size >= this.opts.maxWaiting) throw new LoginBusyError('too many logins waiting');
    this.inFlight.add(address);
    try {
      return await this.queue.add(async () => {
        if (!alive()) throw new LoginBusyError('connection closed before its password was checked');
        return check();
      });
    } finally {
      this.inFlight.delete(address);
    }
  }
}
