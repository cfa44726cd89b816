import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { SessionCache, decodeCached, encodeCached, type CachedSession } from './session-cache.js';

/** Redis cache: one GET per stored read, one SET (with a TTL) per write, one DEL per removal. */
export class RedisSessionCache extends SessionCache {
  private readonly logger = new Logger('EzSession');
  private lastWarning = 0;

  constructor(
    private readonly client: Redis,
    private readonly keyPrefix: string
  ) {
    super();
  }

  async get(sid: string): Promise<CachedSession | undefined> {
    try {
      return decodeCached(await this.client.get(this.keyPrefix + sid));
    } catch (error) {
      this.warn('read', error);
      return undefined;
    }
  }

  async set(sid: string, value: CachedSession, ttlMs: number): Promise<void> {
    if (ttlMs < 1) return this.delete(sid);
    try {
      await this.client.set(this.keyPrefix + sid, encodeCached(value), 'PX', Math.floor(ttlMs));
    } catch (error) {
      this.warn('write', error);
    }
  }

  async fill(sid: string, value: CachedSession, ttlMs: number): Promise<void> {
    if (ttlMs < 1) return;
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
      this.warn('delete', error);
    }
  }


  // One line per 10 s at most: an outage must not flood the log with a line per request.
  private warn(operation: string, error: unknown): void {
    const now = Date.now();
    if (now - this.lastWarning < 10_000) return;
    this.lastWarning = now;
    this.logger.warn(`Redis ${operation} failed, serving from the database: ${error instanceof Error ? error.message : String(error)}`);
  }
}
