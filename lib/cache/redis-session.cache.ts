import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { SessionCache, decodeCached, encodeCached, type CachedSession } from './session-cache.js';

/**
 * Redis cache: one GET per stored read, one SET (with a TTL) per write, one DEL per removal.
 * When a SET or DEL fails, Redis may still hold the value it replaced; such sessions are read
 * from MySQL and their keys deleted as soon as Redis answers again, before any cached read.
 */
export class RedisSessionCache extends SessionCache {
  private readonly logger = new Logger('EzSession');
  /** Sessions whose cache entry may be stale, with the generation of their last failure. */
  private readonly stale = new Map<string, number>();
  private generation = 0;
  private purging: Promise<void> | undefined;
  private lastWarning = 0;

  constructor(
    private readonly client: Redis,
    private readonly keyPrefix: string
  ) {
    super();
    client.on('ready', () => void this.purgeStale());
  }

  get(sid: string): Promise<CachedSession | undefined> {
    if (this.stale.size > 0) return this.purgeStale().then(() => (this.stale.has(sid) ? undefined : this.read(sid)));
    return this.read(sid);
  }

  // Plain promise callbacks, not an async function: this runs on every stored read.
  private read(sid: string): Promise<CachedSession | undefined> {
    return this.client.get(this.keyPrefix + sid).then(decodeCached, (error: unknown) => {
      this.warn('read', error);
      return undefined;
    });
  }

  async set(sid: string, value: CachedSession, ttlMs: number): Promise<void> {
    if (ttlMs < 1) return this.delete(sid);
    try {
      await this.client.set(this.keyPrefix + sid, encodeCached(value), 'PX', Math.floor(ttlMs));
    } catch (error) {
      this.markStale(sid, 'write', error);
    }
  }

  async fill(sid: string, value: CachedSession, ttlMs: number): Promise<void> {
    if (ttlMs < 1 || this.stale.has(sid)) return;
    try {
      await this.client.set(this.keyPrefix + sid, encodeCached(value), 'PX', Math.floor(ttlMs), 'NX');
    } catch (error) {
      this.warn('refill', error);
    }
  }

  async delete(sid: string): Promise<void> {
    try {
      await this.client.del(this.keyPrefix + sid);
    } catch (error) {
      this.markStale(sid, 'delete', error);
    }
  }

  private markStale(sid: string, operation: string, error: unknown): void {
    this.stale.set(sid, ++this.generation);
    this.warn(operation, error);
  }

  private purgeStale(): Promise<void> {
    if (this.stale.size === 0) return Promise.resolve();
    this.purging ??= (async () => {
      const purged = [...this.stale];
      try {
        await this.client.del(...purged.map(([sid]) => this.keyPrefix + sid));
        // A failure recorded while this DEL was in flight has a newer generation and stays.
        for (const [sid, generation] of purged) if (this.stale.get(sid) === generation) this.stale.delete(sid);
      } catch {
        // Still unreachable: these sessions keep bypassing the cache until a purge succeeds.
      }
    })().finally(() => (this.purging = undefined));
    return this.purging;
  }

  // One line per 10 s at most: an outage must not flood the log with a line per request.
  private warn(operation: string, error: unknown): void {
    const now = Date.now();
    if (now - this.lastWarning < 10_000) return;
    this.lastWarning = now;
    this.logger.warn(`Redis ${operation} failed, serving from the database: ${error instanceof Error ? error.message : String(error)}`);
  }
}
