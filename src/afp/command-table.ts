import { CommandTable } from './dispatch.js';
import { loginCommands } from './handlers/login.js';
import { serverCommands } from './handlers/server.js';
import { userCommands } from './handlers/users.js';

/** The one place that lists which AFP commands this server implements. */
export function buildCommandTable(): CommandTable {
  return new CommandTable([loginCommands, serverCommands, userCommands]);
}
