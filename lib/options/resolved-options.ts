import { createSecretKey, type KeyObject } from 'node:crypto';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { systemClock } from '../clock/session-clock.js';
import { EzSessionConfigError } from '../ez-session.errors.js';
import type { EzSessionClock, EzSessionHooks, EzSessionModuleOptions, EzSessionRedisCluster, EzSessionRequirement, EzSessionUserIdSource } from '../interfaces/ez-session-options.interface.js';

export type StoreDialect = 'mysql' | 'sqlite';

export interface SigningKey {
  id: string | undefined;
  key: KeyObject;
}

/** Options after validation and defaults: what the rest of the module reads. */
export interface ResolvedOptions {
  keys: SigningKey[];
  database: DataSourceOptions | DataSource;
  dialect: StoreDialect;
  redis: RedisOptions | string | Redis | Cluster | EzSessionRedisCluster | undefined;
  cookie: {
    name: string;
    /** `'auto'`: Secure when the request arrived over HTTPS (already `true` at boot in production). */
    secure: boolean | 'auto';
    sameSite: 'lax' | 'strict' | 'none';
    domain: string | undefined;
    path: string;
  };
  headerName: string;
  tokenHeader: 'auto' | 'always' | 'never';
  /** `false` when off; trusted origins as browsers spell them in `Origin`. */
  csrf: false | { trustedOrigins: ReadonlySet<string> };
  issuer: string | undefined;
  audience: string | undefined;
  tableName: string;
  keyPrefix: string;
  createTable: boolean;
  idleTimeout: number;
  absoluteTimeout: number;
  gcInterval: number;
  gcBatchSize: number;
  bind: { userAgent: boolean; ip: boolean; custom: ((request: any) => string) | undefined };
  userId: EzSessionUserIdSource | undefined;
  hooks: EzSessionHooks;
  cacheTtl: number;
  lockTimeout: number;
  maxSessionBytes: number;
  clockSkew: number;
  redisCommandTimeout: number;
  guard: EzSessionRequirement | undefined;
  revocationSyncInterval: number;
  clock: EzSessionClock;
}

const MYSQL_TYPES = new Set(['mysql', 'mariadb']);
const SQLITE_TYPES = new Set(['sqljs', 'better-sqlite3', 'sqlite']);
const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Validates the options once, at boot, and fills in defaults; every error names its option. */
export function resolveOptions(options: EzSessionModuleOptions | undefined): ResolvedOptions {
  if (!options || typeof options !== 'object') {
    throw new EzSessionConfigError('options', 'are required: EzSessionModule.forRoot({ secret, database })');
  }
  const keys = resolveKeys(options.secret);
  const { database, dialect } = resolveDatabase(options.database);
  const cookie = resolveCookie(options.cookie ?? {});

  const tableName = options.tableName ?? 'ez_sessions';
  // 56 at most: the revocations table is named `<tableName>_revoked`, within MySQL's 64.
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,55}$/.test(tableName)) {
    throw new EzSessionConfigError('tableName', `must be letters, digits and "_" (at most 56, not starting with a digit); got ${JSON.stringify(tableName)}`);
  }
  const header = options.headerName ?? 'x-session-token';
  if (typeof header !== 'string' || !TOKEN_CHARS.test(header)) {
    throw new EzSessionConfigError('headerName', `is not a valid HTTP header name: ${JSON.stringify(header)}`);
  }
  const headerName = header.toLowerCase();
  const tokenHeader = options.tokenHeader ?? 'auto';
  if (!['auto', 'always', 'never'].includes(tokenHeader)) {
    throw new EzSessionConfigError('tokenHeader', `must be 'auto', 'always' or 'never'; got ${JSON.stringify(tokenHeader)}`);
  }
  const keyPrefix = options.keyPrefix ?? 'ezsession:';
  if (typeof keyPrefix !== 'string' || keyPrefix.length > 64) {
    throw new EzSessionConfigError('keyPrefix', 'must be a string of at most 64 characters');
  }

  const idleTimeout = bounded('idleTimeout', options.idleTimeout, 7200, 1, 400 * 86400);
  const absoluteTimeout = bounded('absoluteTimeout', options.absoluteTimeout, Math.max(86400, idleTimeout), 1, 400 * 86400);
  if (absoluteTimeout < idleTimeout) {
    throw new EzSessionConfigError('absoluteTimeout', `(${absoluteTimeout}) must not be shorter than idleTimeout (${idleTimeout})`);
  }
  return {
    keys,
    database,
    dialect,
    redis: resolveRedis(options.redis),
    cookie,
    headerName,
    tokenHeader,
    csrf: resolveCsrf(options.csrf),
    issuer: resolveTokenParty('issuer', options.issuer),
    audience: resolveTokenParty('audience', options.audience),
    tableName,
    keyPrefix,
    createTable: options.createTable ?? true,
    idleTimeout,
    absoluteTimeout,
    gcInterval: bounded('gcInterval', options.gcInterval, 600, 0, 86400),
    gcBatchSize: Math.floor(bounded('gcBatchSize', options.gcBatchSize, 1000, 1, 100_000)),
    bind: resolveBinding(options.bind ?? {}),
    userId: resolveUserId(options.userId),
    hooks: options.on ?? {},
    cacheTtl: bounded('cacheTtl', options.cacheTtl, 3600, 1, 400 * 86400),
    lockTimeout: bounded('lockTimeout', options.lockTimeout, 5, 0.1, 300),
    maxSessionBytes: bounded('maxSessionBytes', options.maxSessionBytes, 1024 * 1024, 256, 15 * 1024 * 1024),
    clockSkew: bounded('clockSkew', options.clockSkew, 30, 0, 300),
    redisCommandTimeout: bounded('redisCommandTimeout', options.redisCommandTimeout, 500, 10, 60_000),
    guard: resolveRequirement(options.guard),
    revocationSyncInterval: bounded('revocationSyncInterval', options.revocationSyncInterval, 5, 0, 3600),
    clock: resolveClock(options.clock)
  };
}

function resolveKeys(secret: EzSessionModuleOptions['secret']): SigningKey[] {
  if (secret === undefined || secret === null || secret === '') {
    throw new EzSessionConfigError('secret', 'is required: pass at least 32 random characters, e.g. from `openssl rand -base64 48`');
  }
  const entries = typeof secret === 'string' ? [{ id: undefined, secret }] : secret;
  if (!Array.isArray(entries) || entries.length === 0) {
    throw new EzSessionConfigError('secret', 'must be a string or a non-empty array of { id, secret }');
  }
  const seen = new Set<string>();
  return entries.map((entry, index) => {
    const where = typeof secret === 'string' ? 'secret' : `secret[${index}]`;
    if (typeof entry?.secret !== 'string' || entry.secret.length < 32) {
      throw new EzSessionConfigError(where, 'must be at least 32 characters of random material');
    }
    // A long run of few characters ('aaaa…', '12121212…') is a placeholder, not a key.
    if (new Set(entry.secret).size < 8) {
      throw new EzSessionConfigError(where, 'looks like a placeholder, not random material');
    }
    if (entry.id !== undefined) {
      if (typeof entry.id !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(entry.id) || seen.has(entry.id)) {
        throw new EzSessionConfigError(`${where}.id`, 'must be a unique id of 1-32 letters, digits, "-" or "_"');
      }
      seen.add(entry.id);
    }
    return { id: entry.id, key: createSecretKey(Buffer.from(entry.secret, 'utf8')) };
  });
}

function resolveDatabase(database: EzSessionModuleOptions['database']): { database: DataSourceOptions | DataSource; dialect: StoreDialect } {
  if (!database || typeof database !== 'object') {
    throw new EzSessionConfigError('database', "is required: TypeORM DataSourceOptions such as { type: 'mysql', host, port, username, password, database }, or a DataSource");
  }
  const type = String((database instanceof DataSource ? database.options : database).type);
  if (MYSQL_TYPES.has(type)) {
    const { url, host, socketPath } = database instanceof DataSource ? {} : (database as { url?: unknown; host?: unknown; socketPath?: unknown });
    // `url: process.env.MYSQL_URL` with the variable unset would otherwise quietly mean localhost:3306.
    if ('url' in (database instanceof DataSource ? {} : database) && !url && !host && !socketPath) {
      throw new EzSessionConfigError('database.url', `is ${JSON.stringify(url)}: set it (is the environment variable it comes from defined?) or give host, port, username and database`);
    }
    return { database, dialect: 'mysql' };
  }
  if (SQLITE_TYPES.has(type)) return { database, dialect: 'sqlite' };
  throw new EzSessionConfigError('database.type', `"${type}" is not supported: use 'mysql' or 'mariadb' (production), or 'sqljs', 'better-sqlite3' or 'sqlite' (embedded, one process)`);
}

/**
 * ioredis reads any other scheme as a Unix socket path (`http://host:6379` connects to
 * `//host:6379` and only warns, forever): refused here, like a bad MySQL url.
 */
function resolveRedis(redis: EzSessionModuleOptions['redis']): ResolvedOptions['redis'] {
  if (typeof redis !== 'string') return redis;
  let url: URL;
  try {
    url = new URL(redis);
  } catch {
    throw new EzSessionConfigError('redis', `is not a URL: use redis://host:port or rediss://host:port (got ${JSON.stringify(redactedUrl(redis))})`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new EzSessionConfigError('redis', `has the scheme "${url.protocol}": use redis://host:port or rediss://host:port (TLS)`);
  }
  return redis;
}

/** A URL as it may appear in an error: nothing before an `@`, where a password would be. */
function redactedUrl(value: string): string {
  return value.replace(/^.*@/s, '***@');
}

function resolveCookie(cookie: NonNullable<EzSessionModuleOptions['cookie']>): ResolvedOptions['cookie'] {
  const name = cookie.name ?? 'ezsession';
  if (typeof name !== 'string' || !TOKEN_CHARS.test(name)) {
    throw new EzSessionConfigError('cookie.name', `is not a valid cookie name: ${JSON.stringify(name)}`);
  }
  const requested = cookie.secure ?? 'auto';
  if (requested !== true && requested !== false && requested !== 'auto') {
    throw new EzSessionConfigError('cookie.secure', `must be true, false or 'auto'; got ${JSON.stringify(requested)}`);
  }
  const sameSite = cookie.sameSite ?? 'lax';
  if (!['lax', 'strict', 'none'].includes(sameSite)) {
    throw new EzSessionConfigError('cookie.sameSite', `must be 'lax', 'strict' or 'none'; got ${JSON.stringify(sameSite)}`);
  }
  if (sameSite === 'none' && requested === false) {
    throw new EzSessionConfigError('cookie.sameSite', "'none' requires cookie.secure: true or 'auto' (browsers drop it otherwise)");
  }
  // Browsers drop a SameSite=None or prefixed cookie that is not Secure, on any scheme (localhost
  // counts as secure for cookies): 'auto' then means always, rather than a cookie that vanishes over HTTP.
  const prefixed = /^__(host|secure)-/i.test(name);
  const secure = requested === 'auto' && (isProduction() || sameSite === 'none' || prefixed) ? true : requested;
  const path = cookie.path ?? '/';
  if (typeof path !== 'string' || !path.startsWith('/') || /[;\s]/.test(path)) {
    throw new EzSessionConfigError('cookie.path', `must start with "/" and hold no ";" or spaces; got ${JSON.stringify(path)}`);
  }
  if (cookie.domain !== undefined && !/^\.?[A-Za-z0-9.-]+$/.test(cookie.domain)) {
    throw new EzSessionConfigError('cookie.domain', `is not a domain name: ${JSON.stringify(cookie.domain)}`);
  }
  if (name.toLowerCase().startsWith('__host-') && (!secure || cookie.domain !== undefined || path !== '/')) {
    throw new EzSessionConfigError('cookie.name', "uses the __Host- prefix, which needs secure: true or 'auto', path \"/\" and no domain");
  }
  if (name.toLowerCase().startsWith('__secure-') && !secure) {
    throw new EzSessionConfigError('cookie.name', "uses the __Secure- prefix, which needs secure: true or 'auto'");
  }
  return { name, secure, sameSite, domain: cookie.domain, path };
}

/** `NODE_ENV` as deployments spell it: `production`, `Production`, `PRODUCTION`. */
function isProduction(): boolean {
  return process.env.NODE_ENV?.trim().toLowerCase() === 'production';
}

function resolveCsrf(csrf: EzSessionModuleOptions['csrf']): ResolvedOptions['csrf'] {
  if (csrf === false) return false;
  if (csrf === undefined) return { trustedOrigins: new Set() };
  if (typeof csrf !== 'object' || csrf === null || Array.isArray(csrf)) {
    throw new EzSessionConfigError('csrf', `must be false or { trustedOrigins: [...] }; got ${JSON.stringify(csrf)}`);
  }
  const list = csrf.trustedOrigins ?? [];
  if (!Array.isArray(list)) throw new EzSessionConfigError('csrf.trustedOrigins', 'must be an array of origins such as "https://app.example.com"');
  const trustedOrigins = new Set<string>();
  list.forEach((origin, index) => {
    let parsed: URL | undefined;
    try {
      parsed = typeof origin === 'string' ? new URL(origin) : undefined;
    } catch {
      parsed = undefined;
    }
    // Exactly as a browser writes Origin: a prefix or pattern would let in more than was meant.
    const web = parsed !== undefined && (parsed.protocol === 'https:' || parsed.protocol === 'http:') && /^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d+)?$/.test(parsed.host);
    if (!parsed || !web || parsed.origin !== origin) {
      throw new EzSessionConfigError(
        `csrf.trustedOrigins[${index}]`,
        `must be a full origin as browsers send it in Origin (scheme://host[:port], lower case, no path or trailing "/"), e.g. "https://app.example.com"; got ${JSON.stringify(origin)}${web && parsed?.origin !== origin ? ` (did you mean "${parsed?.origin}"?)` : ''}`
      );
    }
    trustedOrigins.add(origin);
  });
  return { trustedOrigins };
}

function resolveTokenParty(option: 'issuer' | 'audience', value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) {
    throw new EzSessionConfigError(option, `must be a non-empty string of at most 256 characters, e.g. "https://app.example.com"; got ${JSON.stringify(value)}`);
  }
  return value;
}

function resolveBinding(bind: NonNullable<EzSessionModuleOptions['bind']>): ResolvedOptions['bind'] {
  if (bind.custom !== undefined && typeof bind.custom !== 'function') {
    throw new EzSessionConfigError('bind.custom', 'must be a function (request) => string');
  }
  return { userAgent: bind.userAgent ?? true, ip: bind.ip ?? false, custom: bind.custom };
}

function resolveUserId(source: EzSessionModuleOptions['userId']): EzSessionUserIdSource | undefined {
  if (source === undefined) return undefined;
  const key = typeof source !== 'object' || source === null ? undefined : 'session' in source ? source.session : 'claim' in source ? source.claim : undefined;
  if (typeof key !== 'string' || key.length === 0) {
    throw new EzSessionConfigError('userId', "must be { session: 'key' } or { claim: 'name' }");
  }
  return source;
}

function resolveRequirement(requirement: EzSessionModuleOptions['guard']): EzSessionRequirement | undefined {
  if (requirement === undefined) return undefined;
  const names = (list: unknown, field: string): string[] => {
    if (list === undefined) return [];
    if (!Array.isArray(list) || list.some((name) => typeof name !== 'string' || name.length === 0)) {
      throw new EzSessionConfigError(`guard.${field}`, 'must be an array of non-empty strings');
    }
    return list as string[];
  };
  const resolved = { keys: names(requirement?.keys, 'keys'), claims: names(requirement?.claims, 'claims') };
  if (resolved.keys.length === 0 && resolved.claims.length === 0) {
    throw new EzSessionConfigError('guard', 'needs at least one of keys or claims, e.g. { keys: ["userId"] }');
  }
  return resolved;
}

/**
 * The clock is read once here: a reading that is not milliseconds since the epoch (seconds, say,
 * or a monotonic `performance.now()`) would put every token and row decades off.
 */
function resolveClock(clock: EzSessionModuleOptions['clock']): EzSessionClock {
  if (clock === undefined) return systemClock;
  if (typeof clock?.now !== 'function') {
    throw new EzSessionConfigError('clock', 'must be an object with a now() method returning milliseconds since the epoch, as Date.now()');
  }
  let reading: unknown;
  try {
    reading = clock.now();
  } catch (error) {
    throw new EzSessionConfigError('clock', `threw from now(): ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  // 1973 to 5138: milliseconds, not seconds (1.8e9) or microseconds (1.8e15), and within what a token's claims hold.
  if (typeof reading !== 'number' || !Number.isFinite(reading) || reading < 1e11 || reading >= 1e14) {
    throw new EzSessionConfigError('clock', `must return milliseconds since the epoch from now(), as Date.now() (about ${systemClock.now()} now); got ${typeof reading === 'string' ? JSON.stringify(reading) : String(reading)}`);
  }
  return clock;
}

function bounded(option: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new EzSessionConfigError(option, `must be a number from ${min} to ${max}; got ${JSON.stringify(value)}`);
  }
  return value;
}
