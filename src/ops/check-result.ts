/**
 * One finding of `afp-gateway doctor` (and of the checks `serve` runs before it starts). The
 * layers that own a resource make their own findings (meta/ for Redis, objects/ for the bucket,
 * discovery/ for multicast); this is the shape they share, so the command only prints them.
 */

/** `skip`: the check does not apply to this configuration (e.g. Bonjour is off). */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** Short name of what was checked: `listen`, `cache`, `redis`, `objects`, ... */
  readonly check: string;
  readonly status: CheckStatus;
  /** What was found, in a sentence. */
  readonly message: string;
  /** What to do about it (warnings and failures). */
  readonly fix?: string;
  /** The configuration key to change, when one is to blame, e.g. `objects.bucket`. */
  readonly key?: string;
  /**
   * Failures only: true when the failure may go away by itself (the server is down, the network
   * is out, a timeout), false when the server refused what is configured (a missing bucket, a
   * wrong password) and only an operator can fix it. `serve` exits differently for the two.
   */
  readonly transient?: boolean;
}

type Details = Omit<CheckResult, 'check' | 'status' | 'message'>;

export const ok = (check: string, message: string): CheckResult => ({ check, status: 'ok', message });

export const skip = (check: string, message: string): CheckResult => ({ check, status: 'skip', message });

export const warn = (check: string, message: string, details: Details = {}): CheckResult => ({ check, status: 'warn', message, ...details });

export const fail = (check: string, message: string, details: Details = {}): CheckResult => ({ check, status: 'fail', message, ...details });

export const failed = (results: readonly CheckResult[]): CheckResult[] => results.filter((r) => r.status === 'fail');
