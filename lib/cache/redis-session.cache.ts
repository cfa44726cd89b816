import { createHash, randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { SessionTelemetry } from '../observability/session-telemetry.js';
import { FILL_IF_LEASED, READ_CURRENT, SET_IF_NEWER, TAKE_LEASE } from './cache-scripts.js';
import { LEASE_MS, SessionCache, decodeCached, encodeUnstamped, type CachedSession } from './session-cache.js';

/**
 * Redis cache (a single server, Sentinel, or a Cluster): one script call per stored read and per
 * write (their checks run in Redis, so they cost no extra round trip; see cache-scripts.ts), one
 * DEL per removal; a miss adds a lease and the guarded refill. When a write or DEL fails, Redis may
 * still hold the value it replaced; such sessions are read from MySQL and their keys deleted as
 * soon as Redis answers again, before any cached read. Every key is one session's alone, so every
 * command and script is single-key.
 */
export class RedisSessionCache extends SessionCache {
  private readonly logger = new Logger('EzSession');
  /** Sessions whose cache entry may be stale, with the generation of their last failure. */
  private readonly stale = new Map<string, number>();
  private generation = 0;
  private purging: Promise<void> | undefined;
  private lastWarning = -Infinity;

  constructor(
    private readonly client: Redis | Cluster,
    private readonly keyPrefix: string,
    private readonly telemetry: SessionTelemetry
  ) {
    super();
    telemetry.cacheSystem = 'redis';
    client.on('ready', () => {
      void this.purgeStale();
      // Loaded ahead, so that the first write after a start or a Redis restart is one EVALSHA, not a NOSCRIPT and an EVAL.
      for (const source of SCRIPTS) void this.client.script('LOAD', source).catch(() => undefined);
    });
    if (client.status === 'ready') client.emit('ready');
  }

  get(sid: string): Promise<CachedSession | undefined> {
    if (this.stale.size > 0) return this.purgeStale().then(() => (this.stale.has(sid) ? undefined : this.read(sid)));
    return this.read(sid);
  }

  // Plain promise callbacks, not an async function: this runs on every stored read.
  private read(sid: string): Promise<CachedSession | undefined> {
    return this.script(READ_CURRENT, this.keyPrefix + sid, []).then(
      (text) => decodeCached(text as string | null),
      (error: unknown) => {
        this.warn('read', error);
        return undefined;
      }
    );
  }

  async set(sid: string, value: CachedSession, ttlMs: number): Promise<void> {
    if (ttlMs < 1) return this.delete(sid);
    try {
      await this.script(SET_IF_NEWER, this.keyPrefix + sid, [String(value.version), encodeUnstamped(value), String(Math.floor(ttlMs))]);
    } catch (error) {
      this.markStale(sid, 'write', error);
    }
  }

  async lease(sid: string): Promise<string | undefined> {
    if (this.stale.has(sid)) return undefined;
    const lease = `lease:${randomBytes(9).toString('base64url')}`;
    try {
      return Number(await this.script(TAKE_LEASE, this.keyPrefix + sid, [lease, String(LEASE_MS)])) === 1 ? lease : undefined;
    } catch (error) {
      this.warn('lease', error);
      return undefined;
    }
  }

  async fill(sid: string, lease: string, value: CachedSession, ttlMs: number): Promise<void> {
    if (ttlMs < 1 || this.stale.has(sid)) return;
    try {
      await this.script(FILL_IF_LEASED, this.keyPrefix + sid, [lease, String(value.version), encodeUnstamped(value), String(Math.floor(ttlMs))]);
    } catch (error) {
      this.warn('refill', error);
    }
  }

  async delete(sid: string): Promise<void> {
    this.telemetry.roundTrip('redis', 'DEL');
    try {
      await this.client.del(this.keyPrefix + sid);
    } catch (error) {
      this.markStale(sid, 'delete', error);
    }
  }

  /** EVALSHA, and EVAL once when the server does not know the script yet (after a restart, on a new cluster node). */
  private script(source: string, key: string, args: string[]): Promise<unknown> {
    this.telemetry.roundTrip('redis', 'EVALSHA');
    return this.client.evalsha(scriptSha(source), 1, key, ...args).catch((error: unknown) => {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      this.telemetry.roundTrip('redis', 'EVAL');
      return this.client.eval(source, 1, key, ...args);
    });
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
        // One DEL per key, not one DEL of many: in a Redis Cluster the keys live on different nodes.
        await Promise.all(purged.map(([sid]) => (this.telemetry.roundTrip('redis', 'DEL'), this.client.del(this.keyPrefix + sid))));
        // A failure recorded while these DELs were in flight has a newer generation and stays.
        for (const [sid, generation] of purged) if (this.stale.get(sid) === generation) this.stale.delete(sid);
      } catch {
        // Still unreachable: these sessions keep bypassing the cache until a purge succeeds.
      }
    })().finally(() => (this.purging = undefined));
    return this.purging;
  }

  // One line per 10 s at most: an outage must not flood the log with a line per request.
  private warn(operation: string, error: unknown): void {
    const now = performance.now();
    if (now - this.lastWarning < 10_000) return;
    this.lastWarning = now;
    this.logger.warn(`Redis ${operation} failed, serving from the database: ${error instanceof Error ? error.message : String(error)}`);
  }
}

const SCRIPTS = [READ_CURRENT, SET_IF_NEWER, TAKE_LEASE, FILL_IF_LEASED];
const shas = new Map<string, string>();
function scriptSha(source: string): string {
  let sha = shas.get(source);
  if (!sha) shas.set(source, (sha = createHash('sha1').update(source).digest('hex')));
  return sha;
}
