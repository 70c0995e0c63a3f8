import type { DsiRequest } from '../dsi/connection.js';
import type { Reader } from '../wire/reader.js';
import type { AfpReply } from './reply.js';
import type { AfpSession } from './session.js';

/**
 * One entry of the dispatch table. The Reader is positioned just after the command byte;
 * offsets used for AFP's conditional pads are counted from the command byte (offset 0).
 */
export interface CommandSpec {
  code: number;
  /** Allowed before login completes (login family, server info). */
  preAuth?: boolean;
  handle(session: AfpSession, r: Reader, req: DsiRequest): Promise<AfpReply>;
}

export class CommandTable {
  private readonly specs = new Map<number, CommandSpec>();

  constructor(groups: readonly (readonly CommandSpec[])[]) {
    for (const g of groups) {
      for (const spec of g) {
        if (this.specs.has(spec.code)) throw new Error(`AFP command ${spec.code} registered twice`);
        this.specs.set(spec.code, spec);
      }
    }
  }

  get(code: number): CommandSpec | undefined {
    return this.specs.get(code);
  }

  codes(): number[] {
    return [...this.specs.keys()].sort((a, b) => a - b);
  }
}
