/** What a handler returns; the session turns it into a DSI reply. */
export interface AfpReply {
  code?: number;
  payload?: Buffer | readonly Buffer[];
}

export const OK: AfpReply = {};
