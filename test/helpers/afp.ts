import { AfpError } from '../../src/afp/errors.js';

/** The AFP result of a call: 0 when it succeeds, the AfpError's code when it fails; anything else rethrows. */
export async function resultCode(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (e) {
    if (e instanceof AfpError) return e.code;
    throw e;
  }
}
