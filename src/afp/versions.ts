/** AFP version strings we speak, newest first as Apple's servers list them. `AFPX03` is AFP 3.0. */
export const AFP_VERSIONS = ['AFP3.4', 'AFP3.3', 'AFP3.2', 'AFP3.1', 'AFPX03'] as const;
export type AfpVersion = (typeof AFP_VERSIONS)[number];

const numeric: Record<AfpVersion, number> = { 'AFP3.4': 34, 'AFP3.3': 33, 'AFP3.2': 32, 'AFP3.1': 31, AFPX03: 30 };

export function parseVersion(s: string): AfpVersion | undefined {
  return (AFP_VERSIONS as readonly string[]).includes(s) ? (s as AfpVersion) : undefined;
}

/** 34 for AFP3.4 etc., for "since version" checks (e.g. the 3.4 xattr error code). */
export function versionNumber(v: AfpVersion): number {
  return numeric[v];
}
