/**
 * What `afp-gateway init` tells the admin after writing the file: what in the answers will
 * not work under the systemd unit as shipped, and what to do next.
 */
import type { GatewayConfig } from '../config/schema.js';
import { starterHoldsSecret, type StarterAnswers } from '../config/starter.js';
import { SERVICE_USER, SYSTEM_DATA_DIR, SYSTEM_ENV_FILE } from './system-install.js';
import type { SystemUser } from './system-user.js';

export function warnings(a: StarterAnswers, c: GatewayConfig, file: string, root: boolean, service: SystemUser | undefined): string[] {
  const out: string[] = [];
  if (!root) return out;
  if (!service)
    out.push(
      `there is no user ${SERVICE_USER} yet: create it (infra/systemd/afp-gateway.sysusers), then run ` +
        // A file with secrets is the service user's own (0600); otherwise its group reads it (0640).
        `${starterHoldsSecret(a) ? `chown ${SERVICE_USER}: ${file}` : `chgrp ${SERVICE_USER} ${file}`} so the service can read it`,
    );
  // The unit's ProtectSystem=strict leaves only its state directory writable.
  const dirs = [c.dataDir, c.cache.dir, ...(c.metadata.backend === 'embedded' ? [c.metadata.path] : []), ...(c.objects.backend === 'fs' ? [c.objects.path] : [])];
  const within = (d: string, top: string): boolean => d === top || d.startsWith(top + '/');
  const outside = [...new Set(dirs.filter((d) => !within(d, SYSTEM_DATA_DIR)))];
  // A directory inside another listed one is covered by it.
  const tops = outside.filter((d) => !outside.some((o) => o !== d && within(d, o)));
  if (tops.length > 0)
    out.push(`the systemd unit in infra/ lets the service write only under ${SYSTEM_DATA_DIR}; add ReadWritePaths=${tops.join(' ')} to it, or it cannot write there`);
  if (a.metadata.backend === 'embedded' && a.objects.backend === 'fs')
    out.push('metadata and file data both stay on this box: back up the data directory, or choose redis and s3');
  return out;
}

export function nextSteps(a: StarterAnswers, file: string, root: boolean): string {
  const envKeys = [
    ...(a.objects.backend === 's3' && !a.objects.credentials ? ['AFPGW_OBJECTS__ACCESS_KEY_ID=...', 'AFPGW_OBJECTS__SECRET_ACCESS_KEY=...'] : []),
    ...(a.metadata.backend === 'redis' && a.metadata.password === undefined ? ['AFPGW_METADATA__PASSWORD=...   (if Redis has a password)'] : []),
  ];
  const lines = ['', 'Next:'];
  let n = 1;
  if (envKeys.length > 0) {
    if (root) {
      lines.push(`  ${n++}. Put the secrets in ${SYSTEM_ENV_FILE} (owner root, mode 0600; the systemd unit reads it), one per line:`);
      for (const k of envKeys) lines.push(`       ${k}`);
      lines.push(`     and load them into this shell for the commands below: set -a; . ${SYSTEM_ENV_FILE}; set +a`);
    } else {
      lines.push(`  ${n++}. Export the secrets in this shell (and wherever the gateway runs):`);
      for (const k of envKeys) lines.push(`       export ${k}`);
    }
  }
  lines.push(`  ${n++}. Check it: the port, the cache directory, the stores, multicast:`);
  lines.push(`       afp-gateway doctor --config ${file}`);
  lines.push(`  ${n++}. Add a user for Time Machine (asks for the password):`);
  lines.push(`       afp-gateway user add NAME --config ${file}`);
  lines.push(`  ${n++}. Start it:`);
  if (root) lines.push('       systemctl enable --now afp-gateway     (with infra/systemd/afp-gateway.service in /etc/systemd/system/)');
  else lines.push(`       afp-gateway serve --config ${file}`);
  lines.push(`  Then, on the Mac: System Settings > General > Time Machine > Add Backup Disk, and choose "${a.volume.name}" on ${a.serverName}.`);
  return lines.join('\n') + '\n';
}
