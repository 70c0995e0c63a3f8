import { CommandTable } from './dispatch.js';
import { accessCommands } from './handlers/access.js';
import { catSearchCommands } from './handlers/catsearch.js';
import { changeCommands } from './handlers/changes.js';
import { desktopCommands } from './handlers/desktop.js';
import { enumerateCommands } from './handlers/enumerate.js';
import { fileDirCommands } from './handlers/filedir.js';
import { forkCommands } from './handlers/forks.js';
import { loginCommands } from './handlers/login.js';
import { reconnectCommands } from './handlers/reconnect.js';
import { serverCommands } from './handlers/server.js';
import { userCommands } from './handlers/users.js';
import { volumeCommands } from './handlers/volume.js';
import { xattrCommands } from './handlers/xattrs.js';

/** The one place that lists which AFP commands this server implements. */
export function buildCommandTable(): CommandTable {
  return new CommandTable([loginCommands, reconnectCommands, serverCommands, userCommands, volumeCommands, fileDirCommands, forkCommands, changeCommands, enumerateCommands, catSearchCommands, xattrCommands, accessCommands, desktopCommands]);
}
