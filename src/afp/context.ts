import type { LoginThrottle } from '../auth/login-throttle.js';
import type { PasswordGate } from '../auth/password-gate.js';
import type { PasswordChecker, Uam } from '../auth/uam.js';
import type { UserDirectory } from '../auth/user-directory.js';
import type { Logger } from '../ops/log.js';
import type { VolumeSet } from '../volume/volume-set.js';
import type { SessionRegistry } from './session-registry.js';

/** Everything AFP sessions share on one gateway node. */
export interface AfpServerContext {
  serverName: string;
  /** FPGetSrvrInfo flags, derived from the commands this server implements. */
  flags: number;
  machineType: string;
  /** 16 bytes, persistent, shared by both nodes of a pair. */
  signature: Buffer;
  uams: readonly Uam[];
  checker: PasswordChecker;
  users: UserDirectory;
  throttle: LoginThrottle;
  gate: PasswordGate;
  volumes: VolumeSet;
  /** Hours a sleeping session is kept; FPZzzzz reports it. */
  sleepHours: number;
  log: Logger;
  /** Set during graceful shutdown: new logins get kFPServerGoingDown. */
  shuttingDown: boolean;
  /** Told of every command a session ran: its name, its result code's name, how long it took, request and reply payload bytes. */
  observeCommand?: (command: string, result: string, seconds: number, bytesIn: number, bytesOut: number) => void;
  /**
   * This gateway node's ID, recorded in the open-fork IDs the metadata store keeps so that
   * opens are unique across a pair. Defaults to 'local' (sessions IDs are random anyway).
   */
  nodeId?: string;
  /** Forks one session may hold open at once; defaults to MAX_OPEN_FORKS (session.ts). */
  maxOpenForks?: number;
  /** Sessions that can be reconnected to or stolen from, and their records in the store. */
  sessions: SessionRegistry;
  /** Replay-cache depth per session (the DSIOpenSession option says the same number). */
  replayCacheSize?: number;
  /** How long FPDisconnectOldSession waits for the old session's request under way. */
  resumeWaitMs?: number;
}
