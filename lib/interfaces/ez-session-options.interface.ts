import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { DataSource, DataSourceOptions } from 'typeorm';

/** A signing key with an id, for rotation: the first key signs, every listed key verifies. */
export interface EzSessionSigningKey {
  /** Goes into the token header as `kid`; letters, digits, `-` and `_`, at most 32 characters. */
  id: string;
  /** At least 32 characters of random material. */
  secret: string;
}

export interface EzSessionCookieOptions {
  /** Cookie name. Default `'ezsession'`. A `__Host-` prefix requires `secure: true` and no `domain`. */
  name?: string;
  /**
   * Default `'auto'`: `Secure` on responses to requests that arrived over HTTPS as the framework
   * resolves it (Express `req.secure` with `trust proxy`, Fastify `request.protocol` with
   * `trustProxy`), and on every response when `NODE_ENV` is `production` (any letter case). With
   * `sameSite: 'none'` or a `__Host-` / `__Secure-` name, `'auto'` means always `Secure` (browsers
   * drop those cookies otherwise). `true` / `false`: always / never.
   */
  secure?: boolean | 'auto';
  /** Default `'lax'`. `'none'` requires `secure: true` or `'auto'`. */
  sameSite?: 'lax' | 'strict' | 'none';
  /** Default: no Domain attribute (host-only cookie). */
  domain?: string;
  /** Default `'/'`. */
  path?: string;
}

/** What a session is bound to; a token presented with other values is refused and a new session starts. */
export interface EzSessionBindingOptions {
  /** Bind to the User-Agent header. Default `true`. */
  userAgent?: boolean;
  /**
   * Bind to the client IP as the framework resolves it (`request.ip`: Express `trust proxy`,
   * Fastify `trustProxy`), never to raw forwarding headers. Default `false` (mobile clients change IP).
   */
  ip?: boolean;
  /** Bind to a value of your own, e.g. a device id header. */
  custom?: (request: any) => string;
}

/** Cross-origin request protection (CSRF) for requests whose session came, or would come, from the cookie. */
export interface EzSessionCsrfOptions {
  /**
   * Origins allowed to send unsafe requests with the session cookie although they are not the
   * request's own origin, e.g. a frontend on another subdomain that CORS lets in with credentials.
   * Full origins only: scheme, host and port when not the default, as browsers send them in
   * `Origin` (`'https://app.example.com'`, `'http://localhost:5173'`).
   */
  trustedOrigins?: string[];
}

/** Where the user id of a session lives, so sessions can be listed and revoked per user. */
export type EzSessionUserIdSource = { session: string } | { claim: string };

export interface EzSessionEvent {
  type: 'created' | 'regenerated' | 'destroyed' | 'revoked' | 'expired' | 'fingerprintMismatch' | 'lockTimeout';
  /** The session concerned (after a regeneration: the new id). */
  sid: string;
  /** The id a regeneration replaced. */
  previousSid?: string;
  /** For `expired`: `'idle'`, `'absolute'` or `'token'`. */
  reason?: string;
}

/** Callbacks for auditing; an exception thrown by one is logged and does not affect the request. */
export type EzSessionHooks = Partial<Record<EzSessionEvent['type'], (event: EzSessionEvent) => void>>;

/** A Redis Cluster for EzSession to connect to: its startup nodes, and ioredis `Cluster` options. */
export interface EzSessionRedisCluster {
  cluster: ClusterNode[];
  options?: ClusterOptions;
}

/** What `EzSessionGuard` requires of a request's session; absent or `null` values count as missing. */
export interface EzSessionRequirement {
  /** Top-level session keys (checked with one read of the session). */
  keys?: string[];
  /** Custom claims of the token (checked with no I/O). */
  claims?: string[];
}

/**
 * Where EzSession reads the time: `now()` in milliseconds since the epoch, as `Date.now()`. Tests
 * pass a clock they move forward, so that sessions, tokens and cache entries expire without waiting.
 */
export interface EzSessionClock {
  now(): number;
}

/** Options of `EzSessionModule.forRoot()`; every duration is in seconds. */
export interface EzSessionModuleOptions {
  /** HS256 signing secret (at least 32 characters), or a key ring for rotation. Required. */
  secret: string | EzSessionSigningKey[];
  /**
   * The durable store: TypeORM DataSourceOptions (EzSession creates and closes the DataSource), or an
   * existing DataSource (EzSession uses it and leaves it open). `type: 'mysql' | 'mariadb'` for
   * production; `'sqljs' | 'better-sqlite3' | 'sqlite'` as a single-process embedded store.
   */
  database: DataSourceOptions | DataSource;
  /**
   * The cache, and the channel that spreads revocations: a `redis://` or `rediss://` URL (any other
   * scheme is refused at boot), ioredis options (with
   * `sentinels` and `name` for Sentinel), `{ cluster: nodes, options }` for a Redis Cluster, or an
   * ioredis `Redis` or `Cluster` client (used as is, never closed by EzSession). Omitted: an
   * in-process cache, fit for one instance only (a warning says so at boot).
   */
  redis?: RedisOptions | string | Redis | Cluster | EzSessionRedisCluster;
  cookie?: EzSessionCookieOptions;
  /** Response header that carries a newly issued token. Default `'x-session-token'`; see `tokenHeader` for when it is sent. */
  headerName?: string;
  /**
   * When a response carries a newly issued token in the `headerName` header (the cookie is sent
   * either way). `'auto'` (default): when the request came with `Authorization: Bearer`, or showed
   * no sign of a browser (no `Sec-Fetch-Site`, no `Origin`: curl, mobile apps, server-to-server,
   * Node's `fetch`); never to a browser whose token travels in the HttpOnly cookie, where the header
   * would hand the token to page scripts. `'always'`: every response that issues one (0.1.0's
   * behaviour). `'never'`: cookie only.
   */
  tokenHeader?: 'auto' | 'always' | 'never';
  /**
   * Refuses, with 403 `SESSION_CSRF_REFUSED`, unsafe requests (not GET, HEAD or OPTIONS) that ask
   * for their session with the cookie, or with no token at all (login CSRF), when they come from
   * another origin: `Sec-Fetch-Site` other than `same-origin` / `none`, or, without it, an `Origin`
   * that is not the request's own. Requests with neither header (non-browser clients) and requests
   * with a Bearer token of this app pass; so do routes marked `@SkipCsrf()`. A cookie-authenticated
   * WebSocket handshake from another origin gets no session. The check reads headers only (no
   * storage I/O). Default: on; `false` turns it off.
   */
  csrf?: false | EzSessionCsrfOptions;
  /**
   * Goes into every token as `iss`; tokens with another `iss`, or none, are refused. Set it (and
   * `audience`) when several apps could share a secret. Default: none (tokens carrying an `iss` are refused).
   */
  issuer?: string;
  /** Goes into every token as `aud`; tokens with another `aud`, or none, are refused. Default: none (tokens carrying an `aud` are refused). */
  audience?: string;
  /** Table holding the sessions. Default `'ez_sessions'`. */
  tableName?: string;
  /** Prefix of the Redis keys. Default `'ezsession:'`. */
  keyPrefix?: string;
  /** Create the table at boot when it is missing. Default `true`. */
  createTable?: boolean;
  /** Session lifetime without activity (sliding). Default 7200 (2 hours). */
  idleTimeout?: number;
  /** Hard cap from the session's creation, whatever the activity. Default 86400 (24 hours). */
  absoluteTimeout?: number;
  /** Seconds between garbage collections of expired rows; 0 turns the schedule off. Default 600. */
  gcInterval?: number;
  /** Rows deleted per GC statement, so no single DELETE runs long. Default 1000. */
  gcBatchSize?: number;
  /** Fingerprint binding. Default `{ userAgent: true, ip: false }`. */
  bind?: EzSessionBindingOptions;
  /** Where the user id lives, for `listForUser` / `revokeAllForUser`. Default: none. */
  userId?: EzSessionUserIdSource;
  /** Audit hooks: created, regenerated, destroyed, revoked, expired, fingerprintMismatch, lockTimeout. */
  on?: EzSessionHooks;
  /** How long a stored session stays in the cache (capped by its remaining life). Default 3600. */
  cacheTtl?: number;
  /** How long a request waits for a session's lock before answering 503. Default 5. */
  lockTimeout?: number;
  /** Largest stored session (data and flash, as JSON) in bytes. Default 1 MiB. */
  maxSessionBytes?: number;
  /** Accepted clock difference between instances when checking `iat` / `exp`. Default 30, at most 300. */
  clockSkew?: number;
  /** Milliseconds a Redis command may take before the cache is bypassed. Default 500. */
  redisCommandTimeout?: number;
  /**
   * Seconds between two reads of the revocations other instances recorded, in case a message over
   * Redis was missed (Redis down, a failover): the longest a revoked token can still be accepted
   * when pub/sub is not delivering. Default 5; 0 turns it off.
   */
  revocationSyncInterval?: number;
  /** What `EzSessionGuard` requires on routes without their own `@RequireSession(...)`. Default: none. */
  guard?: EzSessionRequirement;
  /**
   * The time every expiry is decided by (tokens, sessions, cache entries, tombstones, GC); lock and
   * statement timeouts and Redis TTLs stay on real time. Default: the system clock (`Date.now()`).
   */
  clock?: EzSessionClock;
}
