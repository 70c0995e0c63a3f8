/** One thing wrong with the configuration, tied to where it came from. */
export interface ConfigProblem {
  /** The config file as given, an environment variable name, a CLI flag, or `(defaults)`. */
  readonly source: string;
  /** Key path such as `volumes[0].blockSize`; absent when the problem is not about one key. */
  readonly path?: string;
  readonly message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return p.path === undefined ? `${p.source}: ${p.message}` : `${p.source}: ${p.path}: ${p.message}`;
}

/**
 * Every problem found, not just the first: an operator fixing a config file should not have
 * to restart once per mistake. The message is one line per problem, ready to print.
 */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
