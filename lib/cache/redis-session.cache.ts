import { createHash, randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { LEASE_MS, SessionCache, decodeCached, encodeCached, type CachedSession } from './session-cache.js';

/** Writes a committed value unless the entry holds that version or a newer one; a lease or anything unversioned is replaced. */
const SET_IF_NEWER = `local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^v(%d+)\\n'))
  if version and version >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;

/** Refills only while the reader's lease is still what the key holds. */
const FILL_IF_LEASED = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`;

/**
 * Redis cache: one GET per stored read, one script call per write (the version guard runs in
 * Redis, so it costs no extra round trip), one DEL per removal; a miss adds a lease (SET NX) and
 * the guarded refill. When a write or DEL fails, Redis may still hold the value it replaced; such
 * sessions are read from MySQL and their keys deleted as soon as Redis answers again, before any
 * cached read. Every key is one session's alone, so every command and script is single-key.
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
    client.on('ready', () => {
      void this.purgeStale();
      // Loaded ahead, so that the first write after a start or a Redis restart is one EVALSHA, not a NOSCRIPT and an EVAL.
      for (const source of [SET_IF_NEWER, FILL_IF_LEASED]) void this.client.script('LOAD', source).catch(() => undefined);
    });
    if (client.status === 'ready') client.emit('ready');
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
      await this.script(SET_IF_NEWER, this.keyPrefix + sid, [String(value.version), encodeCached(value), String(Math.floor(ttlMs))]);
    } catch (error) {
      this.markStale(sid, 'write', error);
    }
  }

  async lease(sid: string): Promise<string | undefined> {
    if (this.stale.has(sid)) return undefined;
    const lease = `lease:${randomBytes(9).toString('base64url')}`;
    try {
      return (await this.client.set(this.keyPrefix + sid, lease, 'PX', LEASE_MS, 'NX')) === 'OK' ? lease : undefined;
    } catch (error) {
      this.warn('lease', error);
      return undefined;
    }
  }

  async fill(sid: string, lease: string, value: CachedSession, ttlMs: number): Promise<void> {
    if (ttlMs < 1 || this.stale.has(sid)) return;
    try {
      await this.script(FILL_IF_LEASED, this.keyPrefix + sid, [lease, encodeCached(value), String(Math.floor(ttlMs))]);
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

  /** EVALSHA, and EVAL once when the server does not know the script yet (after a restart, on a new cluster node). */
  private async script(source: string, key: string, args: string[]): Promise<unknown> {
    const sha = scriptSha(source);
    try {
      return await this.client.evalsha(sha, 1, key, ...args);
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      return this.client.eval(source, 1, key, ...args);
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
        // One DEL per key, not one DEL of many: in a Redis Cluster the keys live on different nodes.
        await Promise.all(purged.map(([sid]) => this.client.del(this.keyPrefix + sid)));
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
    const now = Date.now();
    if (now - this.lastWarning < 10_000) return;
    this.lastWarning = now;
    this.logger.warn(`Redis ${operation} failed, serving from the database: ${error instanceof Error ? error.message : String(error)}`);
  }
}

const shas = new Map<string, string>();
function scriptSha(source: string): string {
  let sha = shas.get(source);
  if (!sha) shas.set(source, (sha = createHash('sha1').update(source).digest('hex')));
  return sha;
}
