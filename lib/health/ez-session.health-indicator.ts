import { Inject, Injectable } from '@nestjs/common';
import { EZ_SESSION_DATA_SOURCE, EZ_SESSION_REDIS } from '../ez-session.constants.js';
import type { SessionDataSource } from '../ez-session.providers.js';
import type { SessionRedis } from '../revocation/revocation.registry.js';

/** One dependency's answer to a health check. */
export interface EzSessionDependencyHealth {
  status: 'up' | 'down';
  /** How long it took to answer (or to give up), in milliseconds. */
  latencyMs: number;
  /** Why it is down: `timeout`, or the error code (`ECONNREFUSED`, ...), never the server's message. */
  reason?: string;
}

/**
 * `down` when the store does not answer (nothing can be read or written); `degraded` when only the
 * cache does not (reads fall back to the store, at its cost); `up` otherwise. Terminus answers 503
 * for `down` only.
 */
export interface EzSessionHealth {
  status: 'up' | 'degraded' | 'down';
  store: EzSessionDependencyHealth & { system: string };
  cache: EzSessionDependencyHealth & { kind: 'redis' | 'redis-cluster' | 'memory' };
  [detail: string]: unknown;
}

export interface EzSessionHealthOptions {
  /** How long each of the store and the cache may take to answer, in milliseconds (default 1000). */
  timeout?: number;
}

/**
 * A health indicator for `@nestjs/terminus` (which it does not import: its result is the shape
 * terminus reads, so apps without terminus load nothing more). Checks the store (`SELECT 1`) and the
 * cache (`PING`) at the same time, each within its own timeout:
 *
 *     @Get('health') @HealthCheck()
 *     check() { return this.health.check([() => this.sessions.isHealthy('sessions')]); }
 */
@Injectable()
export class EzSessionHealthIndicator {
  constructor(
    @Inject(EZ_SESSION_DATA_SOURCE) private readonly storage: SessionDataSource,
    @Inject(EZ_SESSION_REDIS) private readonly redis: SessionRedis
  ) {}

  async isHealthy<const Key extends string = 'ezsession'>(key: Key = 'ezsession' as Key, options: EzSessionHealthOptions = {}): Promise<Record<Key, EzSessionHealth>> {
    const timeout = options.timeout ?? 1000;
    const client = this.redis.client;
    const [store, cache] = await Promise.all([
      timed(timeout, () => this.storage.dataSource.query('SELECT 1')),
      client ? timed(timeout, () => client.ping()) : Promise.resolve<EzSessionDependencyHealth>({ status: 'up', latencyMs: 0 })
    ]);
    const status = store.status === 'down' ? 'down' : cache.status === 'down' ? 'degraded' : 'up';
    const kind = !client ? 'memory' : (client as { isCluster?: boolean }).isCluster ? 'redis-cluster' : 'redis';
    const health: EzSessionHealth = { status, store: { ...store, system: String(this.storage.dataSource.options.type) }, cache: { ...cache, kind } };
    return { [key]: health } as Record<Key, EzSessionHealth>;
  }
}

async function timed(timeoutMs: number, check: () => Promise<unknown>): Promise<EzSessionDependencyHealth> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    const outcome = await Promise.race([check().then(() => 'answered' as const), late]);
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    return outcome === 'answered' ? { status: 'up', latencyMs } : { status: 'down', latencyMs, reason: 'timeout' };
  } catch (error) {
    const code = (error as { code?: unknown })?.code;
    return { status: 'down', latencyMs: Math.round((performance.now() - started) * 10) / 10, reason: typeof code === 'string' ? code : 'error' };
  } finally {
    clearTimeout(timer);
  }
}
