/**
 * Loading: YAML file, then AFPGW_* environment variables, then CLI flags, then one validation
 * pass. Every problem is reported with the place it came from, so an operator knows whether to
 * fix the file, the systemd unit or the command line.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import * as z from 'zod';
import { ConfigError, type ConfigProblem } from './errors.js';
import { configSchema, type GatewayConfig, type ParsedConfig } from './schema.js';

export interface CliOverrides {
  port?: number;
  dataDir?: string;
}

export interface LoadOptions {
  /** YAML config file; relative paths inside it are resolved against its directory. */
  file?: string;
  /** Defaults to process.env. Pass `{}` to ignore the environment. */
  env?: NodeJS.ProcessEnv;
  overrides?: CliOverrides;
  /** Base for relative paths given by env or CLI, or anywhere when there is no file. Defaults to process.cwd(). */
  cwd?: string;
}

export const ENV_PREFIX = 'AFPGW_';
/** Reserved for the CLI to name the config file; not a setting, so not an override. */
export const CONFIG_FILE_ENV = 'AFPGW_CONFIG';
/** Source names used in messages for the CLI overrides. */
export const CLI_SOURCES = { port: '--port', dataDir: '--data' } as const;

type Key = string | number;
type KeyPath = readonly Key[];

interface Override {
  readonly path: KeyPath;
  readonly source: string;
}

/** Where each part of the merged raw config came from. */
interface Provenance {
  readonly fileSource: string | undefined;
  readonly fileRaw: unknown;
  readonly overrides: readonly Override[];
  readonly fileDir: string;
  readonly cwd: string;
}

export async function loadConfig(opts: LoadOptions = {}): Promise<GatewayConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const problems: ConfigProblem[] = [];
  let raw: Record<string, unknown> = {};
  let fileDir = cwd;
  if (opts.file === '') throw new ConfigError([{ source: '(config)', message: 'config file path is empty' }]);
  if (opts.file !== undefined) {
    const full = resolve(cwd, opts.file);
    fileDir = dirname(full);
    raw = parseYamlFile(await readConfigFile(full, opts.file), opts.file);
  }
  // The file's own values, before overrides, to tell who is to blame for an error below a key.
  const fileRaw: unknown = structuredClone(raw);
  const overrides: Override[] = [];

  for (const o of envOverrides(opts.env ?? process.env, problems)) {
    setAt(raw, o.path, o.value);
    overrides.push(o);
  }
  const cli = opts.overrides ?? {};
  if (cli.port !== undefined) {
    setAt(raw, ['listen', 'port'], cli.port);
    overrides.push({ path: ['listen', 'port'], source: CLI_SOURCES.port });
  }
  if (cli.dataDir !== undefined) {
    setAt(raw, ['dataDir'], cli.dataDir);
    overrides.push({ path: ['dataDir'], source: CLI_SOURCES.dataDir });
  }

  return validate(raw, { fileSource: opts.file, fileRaw, overrides, fileDir, cwd }, problems);
}

/**
 * Validates an in-memory config (e.g. one `init` is about to write) as if it were a file named
 * `source` in `baseDir`. No environment, no overrides.
 */
export function parseConfig(raw: unknown, opts: { source?: string; baseDir?: string } = {}): GatewayConfig {
  const baseDir = opts.baseDir ?? process.cwd();
  const source = opts.source ?? '(config)';
  return validate(raw ?? {}, { fileSource: source, fileRaw: raw, overrides: [], fileDir: baseDir, cwd: baseDir }, []);
}

// ---- the file --------------------------------------------------------------------------

async function readConfigFile(full: string, source: string): Promise<string> {
  try {
    return await readFile(full, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'config file not found'
        : code === 'EACCES'
          ? 'config file not readable (permission denied)'
          : code === 'EISDIR'
            ? 'is a directory, not a config file'
            : `cannot read config file: ${(err as Error).message}`;
    throw new ConfigError([{ source, message: why }]);
  }
}

function parseYamlFile(text: string, source: string): Record<string, unknown> {
  // uniqueKeys: a key given twice is almost always a merge mistake; YAML would keep the last.
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => ({ source, message: yamlErrorText(e) })));
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError([{ source, message: (err as Error).message }]);
  }
  if (value === null || value === undefined) return {};
  if (!isRecord(value)) throw new ConfigError([{ source, path: '(root)', message: 'must be a mapping of settings' }]);
  return value;
}

function yamlErrorText(e: { code: string; message: string; linePos?: readonly { line: number; col: number }[] }): string {
  const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ` : '';
  const what =
    e.code === 'DUPLICATE_KEY'
      ? 'duplicate key'
      : (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
  return where + what;
}

// ---- the environment -------------------------------------------------------------------

interface EnvOverride extends Override {
  readonly value: unknown;
}

const SEGMENT = /^[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*$/;
const MAX_INDEX = 999;

function envOverrides(env: NodeJS.ProcessEnv, problems: ConfigProblem[]): EnvOverride[] {
  const out: EnvOverride[] = [];
  for (const name of Object.keys(env).sort()) {
    const text = env[name];
    if (!name.startsWith(ENV_PREFIX) || name === CONFIG_FILE_ENV || text === undefined) continue;
    const segments = name.slice(ENV_PREFIX.length).split('__');
    if (!segments.every((s) => SEGMENT.test(s))) {
      problems.push({ source: name, message: 'not a setting name (UPPER_SNAKE words joined by "__", e.g. AFPGW_LISTEN__PORT)' });
      continue;
    }
    const found = findEnvKey(segments);
    if ('unknown' in found) {
      problems.push({ source: name, path: formatPath(found.path), message: found.unknown });
      continue;
    }
    const parsed = found.verbatim ? { value: text } : parseEnvValue(text);
    if ('error' in parsed) {
      problems.push({ source: name, path: formatPath(found.path), message: parsed.error });
      continue;
    }
    out.push({ path: found.path, source: name, value: parsed.value });
  }
  // A whole section (AFPGW_LISTEN='{...}') goes in before single keys inside it, so both apply.
  return out.sort((a, b) => a.path.length - b.path.length);
}

type EnvKey = { path: Key[]; verbatim: boolean } | { path: Key[]; unknown: string };

/** Maps UPPER_SNAKE segments onto schema keys; numeric segments index lists (VOLUMES__0__NAME). */
function findEnvKey(segments: readonly string[]): EnvKey {
  let nodes = structural(configSchema);
  const path: Key[] = [];
  for (const seg of segments) {
    if (/^\d+$/.test(seg) && nodes.some((n) => n instanceof z.ZodArray)) {
      const index = Number(seg);
      if (index > MAX_INDEX) return { path: [...path, index], unknown: `list index above ${MAX_INDEX}` };
      path.push(index);
      nodes = elementsOf(nodes);
      continue;
    }
    const wanted = seg.replace(/_/g, '').toLowerCase();
    const key = keysOf(nodes).find((k) => k.toLowerCase() === wanted);
    if (key === undefined) {
      const guess = camelCase(seg);
      return { path: [...path, guess], unknown: unknownKeyText(guess, keysOf(nodes)) };
    }
    path.push(key);
    nodes = childrenOf(nodes, key);
  }
  // Strings are taken as written: YAML would turn a password like 0123 into the number 123.
  const verbatim = nodes.length > 0 && nodes.every((n) => n instanceof z.ZodString || n instanceof z.ZodEnum || n instanceof z.ZodLiteral);
  return { path, verbatim };
}

function parseEnvValue(text: string): { value: unknown } | { error: string } {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const first = doc.errors[0];
  if (first) return { error: `not a valid YAML value: ${yamlErrorText(first)}` };
  return { value: doc.toJS({ maxAliasCount: 100 }) };
}

function camelCase(seg: string): string {
  return seg.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

// ---- walking the schema ----------------------------------------------------------------

/** The object/array/leaf schemas a value at some key may be parsed by, wrappers removed. */
function structural(s: z.core.$ZodType): z.core.$ZodType[] {
  if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable)
    return structural(s.unwrap());
  if (s instanceof z.ZodPipe) return structural(s.in);
  if (s instanceof z.ZodUnion) return s.options.flatMap((o) => structural(o));
  return [s];
}

function objectsOf(nodes: readonly z.core.$ZodType[]): z.ZodObject[] {
  return nodes.filter((n): n is z.ZodObject => n instanceof z.ZodObject);
}

function keysOf(nodes: readonly z.core.$ZodType[]): string[] {
  return [...new Set(objectsOf(nodes).flatMap((o) => Object.keys(o.shape)))];
}

function childrenOf(nodes: readonly z.core.$ZodType[], key: string): z.core.$ZodType[] {
  return objectsOf(nodes).flatMap((o) => {
    const child = o.shape[key];
    return child === undefined ? [] : structural(child);
  });
}

function elementsOf(nodes: readonly z.core.$ZodType[]): z.core.$ZodType[] {
  return nodes.flatMap((n) => (n instanceof z.ZodArray ? structural(n.element) : []));
}

function nodesAt(path: readonly PropertyKey[]): z.core.$ZodType[] {
  let nodes = structural(configSchema);
  for (const key of path) nodes = typeof key === 'number' ? elementsOf(nodes) : childrenOf(nodes, String(key));
  return nodes;
}

function unknownKeyText(key: string, known: readonly string[]): string {
  const norm = (s: string): string => s.replace(/[-_\s]/g, '').toLowerCase();
  const close = known.find((k) => norm(k) === norm(key)) ?? known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
  return close === undefined ? 'unknown key' : `unknown key (did you mean "${close}"?)`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

// ---- validation and blame --------------------------------------------------------------

function validate(raw: unknown, prov: Provenance, earlier: ConfigProblem[]): GatewayConfig {
  const result = configSchema.safeParse(raw);
  const problems = [...earlier];
  if (!result.success) for (const issue of result.error.issues) problems.push(...describeIssue(issue, raw, prov));
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return resolvePaths(result.data, prov);
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown, prov: Provenance): ConfigProblem[] {
  const problem = (path: readonly PropertyKey[], message: string): ConfigProblem => ({
    source: sourceOf(path, prov),
    path: formatPath(path),
    message,
  });
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => problem([...issue.path, k], unrecognizedText(issue.path, k, raw)));
    case 'invalid_type': {
      const value = getAt(raw, issue.path);
      const msg = value === undefined ? 'is required' : `must be ${typeName(issue.expected)}, not ${valueName(value)}`;
      return [problem(issue.path, msg)];
    }
    case 'invalid_union':
      if (issue.discriminator !== undefined && 'options' in issue && issue.options) {
        const choices = issue.options.map((o) => JSON.stringify(o)).join(', ');
        const value = getAt(raw, issue.path);
        return [problem(issue.path, value === undefined ? `is required (one of ${choices})` : `must be one of ${choices}`)];
      }
      return [problem(issue.path, issue.message)];
    case 'invalid_value':
      return [problem(issue.path, `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`)];
    default:
      return [problem(issue.path, issue.message)];
  }
}

function unrecognizedText(parent: readonly PropertyKey[], key: string, raw: unknown): string {
  const nodes = nodesAt(parent);
  const discriminator = getAt(raw, [...parent, 'backend']);
  // The key exists, just not for the backend chosen: say so rather than "did you mean".
  if (typeof discriminator === 'string' && keysOf(nodes).includes(key))
    return `is not a setting of backend "${discriminator}"`;
  return unknownKeyText(key, keysOf(nodes));
}

/**
 * Who set the value at `path`: the nearest override at or above it; else, going up from it
 * through keys the file does not set, an override below (AFPGW_METADATA__BACKEND=redis is to
 * blame for the missing url when the file has no metadata section); else the file.
 */
function sourceOf(path: readonly PropertyKey[], prov: Provenance): string {
  let best: Override | undefined;
  for (const o of prov.overrides)
    if (isPrefix(o.path, path) && (best === undefined || o.path.length >= best.path.length)) best = o;
  if (best) return best.source;
  for (let n = path.length; n >= 0; n--) {
    const at = path.slice(0, n);
    if (getAt(prov.fileRaw, at) !== undefined) break;
    const below = prov.overrides.findLast((o) => isPrefix(at, o.path));
    if (below) return below.source;
  }
  return prov.fileSource ?? '(defaults)';
}

function isPrefix(prefix: readonly PropertyKey[], path: readonly PropertyKey[]): boolean {
  return prefix.length <= path.length && prefix.every((k, i) => String(k) === String(path[i]));
}

/** Paths written in the file are relative to the file; those from env or CLI to the cwd. */
function resolvePaths(p: ParsedConfig, prov: Provenance): GatewayConfig {
  const base = (path: KeyPath): string => (sourceOf(path, prov) === (prov.fileSource ?? '(defaults)') ? prov.fileDir : prov.cwd);
  const dataDir = resolve(base(['dataDir']), p.dataDir);
  const pathAt = (path: KeyPath, value: string | undefined, fallback: string): string =>
    value === undefined ? join(dataDir, fallback) : resolve(base(path), value);
  return {
    ...p,
    dataDir,
    metadata:
      p.metadata.backend === 'embedded'
        ? { ...p.metadata, path: pathAt(['metadata', 'path'], p.metadata.path, 'meta') }
        : p.metadata,
    objects:
      p.objects.backend === 'fs' ? { ...p.objects, path: pathAt(['objects', 'path'], p.objects.path, 'objects') } : p.objects,
    cache: { ...p.cache, dir: pathAt(['cache', 'dir'], p.cache.dir, 'cache') },
    ops: { ...p.ops, controlSocket: p.ops.controlSocket === null ? null : pathAt(['ops', 'controlSocket'], p.ops.controlSocket, 'control.sock') },
  };
}

// ---- small helpers ---------------------------------------------------------------------

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function setAt(root: Record<string, unknown>, path: KeyPath, value: unknown): void {
  let node: Record<Key, unknown> = root;
  path.forEach((key, i) => {
    if (i === path.length - 1) {
      node[key] = value;
      return;
    }
    let child = node[key];
    // An override below a key the file set to a scalar replaces it: the override wins.
    if (typeof child !== 'object' || child === null) {
      child = typeof path[i + 1] === 'number' ? [] : {};
      node[key] = child;
    }
    node = child as Record<Key, unknown>;
  });
}

/** `volumes[0].blockSize` */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else {
      const name = String(key);
      out += /^[A-Za-z_$][\w$]*$/.test(name) ? (out === '' ? name : `.${name}`) : `[${JSON.stringify(name)}]`;
    }
  }
  return out;
}

function typeName(expected: string): string {
  switch (expected) {
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    case 'boolean':
      return 'true or false';
    case 'number':
    case 'int':
      return 'a number';
    case 'string':
      return 'a string';
    default:
      return expected;
  }
}

function valueName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'boolean') return 'a boolean';
  return `a ${typeof v}`;
}

// ---- redaction -------------------------------------------------------------------------

const SECRET_KEY = /password|secret/i;
const URL_KEYS = new Set(['url', 'endpoint']);

/** A copy safe to log or show on a status page: passwords, secret keys and URL credentials become "***". */
export function redactConfig(cfg: unknown): unknown {
  return redact(cfg, undefined);
}

function redact(v: unknown, key: string | undefined): unknown {
  if (key !== undefined && SECRET_KEY.test(key) && v !== undefined && v !== null) return '***';
  if (typeof v === 'string' && key !== undefined && URL_KEYS.has(key)) return redactUrl(v);
  if (Array.isArray(v)) return v.map((x) => redact(x, undefined));
  if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redact(x, k)]));
  return v;
}

function redactUrl(s: string): string {
  try {
    const u = new URL(s);
    // redis://user:pass@host keeps the user name; a lone userinfo (redis://secret@host) is
    // treated as a password by some clients, so it goes too.
    if (u.password !== '') u.password = '***';
    else if (u.username !== '') u.username = '***';
    else return s; // nothing to hide; keep it exactly as configured
    return u.toString();
  } catch {
    return '***';
  }
}
