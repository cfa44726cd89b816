import { Logger, type Provider } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { MemorySessionCache } from './cache/memory-session.cache.js';
import { RedisSessionCache } from './cache/redis-session.cache.js';
import { SessionCache } from './cache/session-cache.js';
import { EZ_SESSION_CLOCK } from './clock/session-clock.js';
import { EZ_SESSION_DATA_SOURCE, EZ_SESSION_OPTIONS, EZ_SESSION_REDIS } from './ez-session.constants.js';
import { EzSessionConfigError } from './ez-session.errors.js';
import { provideTelemetry } from './observability/telemetry.provider.js';
import { SessionTelemetry } from './observability/session-telemetry.js';
import { EZ_SESSION_MODULE_OPTIONS } from './ez-session.module-definition.js';
import type { EzSessionClock } from './interfaces/ez-session-options.interface.js';
import { resolveOptions, type ResolvedOptions } from './options/resolved-options.js';
import type { SessionRedis } from './revocation/revocation.registry.js';
import { SessionRepository } from './storage/session.repository.js';
import { SessionTokenCodec } from './token/session-token.codec.js';

/** The DataSource in use, and whether EzSession created it (and so must close it). */
export interface SessionDataSource {
  dataSource: DataSource;
  owned: boolean;
}

const logger = new Logger('EzSession');
const REDIS_CONNECT_AT_BOOT_MS = 10_000;

export const ezSessionProviders: Provider[] = [
  { provide: EZ_SESSION_OPTIONS, useFactory: resolveOptions, inject: [EZ_SESSION_MODULE_OPTIONS] },
  { provide: EZ_SESSION_CLOCK, useFactory: (options: ResolvedOptions) => options.clock, inject: [EZ_SESSION_OPTIONS] },
  { provide: SessionTokenCodec, useFactory: (options: ResolvedOptions) => new SessionTokenCodec(options), inject: [EZ_SESSION_OPTIONS] },
  { provide: EZ_SESSION_DATA_SOURCE, useFactory: openDataSource, inject: [EZ_SESSION_OPTIONS] },
  provideTelemetry,
  {
    provide: SessionRepository,
    useFactory: async (options: ResolvedOptions, { dataSource, owned }: SessionDataSource, clock: EzSessionClock, redis: SessionRedis, telemetry: SessionTelemetry) => {
      // The Redis client, for the lease that locks sessions across Galera nodes (lockVia).
      const repository = new SessionRepository(dataSource, options, clock, telemetry, redis.client);
      await repository.prepare().catch(async (error: Error) => {
        // The boot stops here, so no shutdown hook will run: what EzSession opened is closed now.
        if (owned) await dataSource.destroy().catch(() => undefined);
        if (error instanceof EzSessionConfigError) throw error;
        throw new EzSessionConfigError(
          'createTable',
          `is on, but the session tables could not be created or updated: ${error.message}. Grant CREATE and ALTER, or create them yourself (README, Storage) and set createTable: false`,
          { cause: error }
        );
      });
      return repository;
    },
    inject: [EZ_SESSION_OPTIONS, EZ_SESSION_DATA_SOURCE, EZ_SESSION_CLOCK, EZ_SESSION_REDIS, SessionTelemetry]
  },
  { provide: EZ_SESSION_REDIS, useFactory: connectRedis, inject: [EZ_SESSION_OPTIONS] },
  {
    provide: SessionCache,
    useFactory: (options: ResolvedOptions, redis: SessionRedis, telemetry: SessionTelemetry) =>
      redis.client ? new RedisSessionCache(redis.client, options.keyPrefix, telemetry) : new MemorySessionCache(),
    inject: [EZ_SESSION_OPTIONS, EZ_SESSION_REDIS, SessionTelemetry]
  }
];

async function openDataSource(options: ResolvedOptions): Promise<SessionDataSource> {
  if (options.database instanceof DataSource) {
    if (!options.database.isInitialized) await initialize(options.database);
    return { dataSource: options.database, owned: false };
  }
  const dataSource = new DataSource(options.dialect === 'mysql' ? withoutQueryTraces(options.database) : options.database);
  await initialize(dataSource);
  if (options.dialect === 'sqlite') {
    logger.log(`Sessions are stored in an embedded ${options.database.type} database: one process only. Use type 'mysql' with several instances.`);
  }
  return { dataSource, owned: true };
}

/** Opens the DataSource, or stops the boot with an error that says what was tried and why it failed. */
async function initialize(dataSource: DataSource): Promise<void> {
  try {
    await dataSource.initialize();
  } catch (error) {
    throw new EzSessionConfigError('database', connectionProblem(dataSource.options, error), { cause: error });
  }
}

function connectionProblem(options: DataSourceOptions, error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  if (!MYSQL_DRIVERS.has(options.type)) return `could not be opened (${options.type}): ${message}`;
  const where = serverOf(options);
  switch (code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
      return `names a MySQL server that cannot be reached at ${where} (${code}): is it running, and are host and port right?`;
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_DBACCESS_DENIED_ERROR':
      return `was refused by the MySQL server at ${where} (${code}): check the username, password and the user's grants. The server said: ${message}`;
    case 'ER_BAD_DB_ERROR':
      return `names a database that does not exist on ${where} (${code}): create it, or fix the database name. The server said: ${message}`;
    default:
      return `could not connect to MySQL at ${where}${code ? ` (${code})` : ''}: ${message}`;
  }
}

const MYSQL_DRIVERS = new Set(['mysql', 'mariadb']);

/** host:port as the driver will use it (a URL wins over host/port), never with the password. */
function serverOf(options: DataSourceOptions): string {
  const { url, host, port, socketPath } = options as { url?: string; host?: string; port?: number; socketPath?: string };
  if (socketPath) return `socket ${socketPath}`;
  if (url) {
    try {
      const parsed = new URL(url);
      return `${parsed.hostname}:${parsed.port || 3306}`;
    } catch {
      return 'the url given (which does not parse as a URL)';
    }
  }
  return `${host ?? 'localhost'}:${port ?? 3306}`;
}

/**
 * mysql2 captures a stack trace for every query (`trace`), about 5% of a session write's CPU when
 * profiled; EzSession's statements gain nothing from it. The app's own `extra` settings still win.
 */
function withoutQueryTraces(database: DataSourceOptions): DataSourceOptions {
  const extra = (database as { extra?: Record<string, unknown> }).extra;
  return { ...database, extra: { trace: false, ...extra } } as DataSourceOptions;
}

async function connectRedis(options: ResolvedOptions): Promise<SessionRedis> {
  const redis = options.redis;
  if (redis === undefined) {
    logger.warn('No redis option: sessions are cached in this process only. Configure Redis when running more than one instance.');
    return { client: undefined, owned: false };
  }
  if (isRedisClient(redis)) return { client: redis, owned: false };

  // Fail fast rather than queue or resend: a queued or resent write could land after newer data,
  // and a waiting read would hold the request for ioredis's default reconnect time (about 73 s).
  const connection = {
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.redisCommandTimeout,
    connectTimeout: 2000
  };
  // Auto-pipelining writes the commands of concurrent requests issued in one event-loop turn with one
  // socket write: under load, a syscall per command was the largest cost of a cached read.
  const client =
    typeof redis === 'string'
      ? new Redis(redis, { ...connection, enableAutoPipelining: true, enableOfflineQueue: false, lazyConnect: true })
      : 'cluster' in redis
        ? new Cluster(redis.cluster, {
            enableAutoPipelining: true,
            enableOfflineQueue: false,
            ...redis.options,
            redisOptions: { ...connection, ...redis.options?.redisOptions },
            lazyConnect: true
          })
        : new Redis({ ...connection, enableAutoPipelining: true, enableOfflineQueue: false, ...redis, lazyConnect: true });
  let lastError = -Infinity;
  client.on('error', (error: Error) => {
    if (performance.now() - lastError > 10_000) logger.warn(`Redis: ${error.message}`);
    lastError = performance.now();
  });
  await connectedWithin(client, REDIS_CONNECT_AT_BOOT_MS).catch((error: Error) =>
    logger.warn(`Redis is not reachable at boot (${error.message}); reads fall back to the database until it is`)
  );
  return { client, owned: true };
}

/**
 * ioredis's `Cluster.connect()` never settles when the ready check after the first slot refresh
 * fails (e.g. CLUSTER INFO past the command timeout on a busy machine): the client reconnects on
 * its own and leaves that first promise pending, and the boot waited forever. Past `ms` the boot
 * goes on as with a Redis that is down; the client still becomes ready by itself.
 */
function connectedWithin(client: Redis | Cluster, ms: number): Promise<void> {
  const connecting = client.connect();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no connection within ${ms} ms`)), ms);
  });
  connecting.catch(() => undefined);
  return Promise.race([connecting, late]).finally(() => clearTimeout(timer));
}

function isRedisClient(value: unknown): value is Redis | Cluster {
  return typeof (value as Redis | undefined)?.sendCommand === 'function';
}
