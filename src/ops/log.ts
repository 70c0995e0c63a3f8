import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/**
 * Structured JSON lines on stdout (pino). Tests and CLI probes pass `silent`; every
 * session's lines carry a `session` field through child loggers.
 */
export function createLogger(level: LevelWithSilent = 'info', name = 'afp-gateway'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
