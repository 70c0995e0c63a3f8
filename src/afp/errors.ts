import { resultName } from './result-codes.js';

/** A failure with a defined AFP result code; handlers throw it, the dispatcher answers with it. */
export class AfpError extends Error {
  constructor(readonly code: number, detail?: string) {
    super(detail ? `${resultName(code)}: ${detail}` : resultName(code));
    this.name = 'AfpError';
  }
}
