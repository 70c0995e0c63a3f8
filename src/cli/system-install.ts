/**
 * Where a system install keeps things: the paths and the user that
 * infra/systemd/afp-gateway.service and afp-gateway.sysusers expect.
 */
export const SYSTEM_CONFIG = '/etc/afp-gateway/config.yaml';
/** The unit's StateDirectory, the only place its ProtectSystem=strict lets the service write. */
export const SYSTEM_DATA_DIR = '/var/lib/afp-gateway';
/** The unit's EnvironmentFile, for secrets as AFPGW_* variables. */
export const SYSTEM_ENV_FILE = '/etc/afp-gateway/env';
export const SERVICE_USER = 'afp-gateway';
