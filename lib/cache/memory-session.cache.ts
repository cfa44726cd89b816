import { randomBytes } from 'node:crypto';
import { LEASE_MS, SessionCache, type CachedSession } from './session-cache.js';

const MAX_ENTRIES = 10_000;

type Entry = { value: CachedSession; until: number } | { lease: string; until: number };

/**
 * In-process cache for a single instance (development, tests of one process), with the same
 * rules as the Redis one: newer versions win, refills need a lease. Bounded; oldest entries go first.
 * TTLs run on the monotonic clock, as Redis's do on its own: whether the session itself has ended
 * is decided by the reader, against the `expiresAt` every entry carries.
 */
export class MemorySessionCache extends SessionCache {
  private readonly entries = new Map<string, Entry>();

  async get(sid: string): Promise<CachedSession | undefined> {
    const entry = this.live(sid);
    return entry && 'value' in entry ? entry.value : undefined;
  }

  async set(sid: string, value: CachedSession, ttlMs: number): Promise<void> {
    const entry = this.live(sid);
    if (entry && 'value' in entry && entry.value.version >= value.version) return;
    this.put(sid, { value, until: performance.now() + ttlMs }, ttlMs);
  }

  async lease(sid: string): Promise<string | undefined> {
    if (this.live(sid)) return undefined;
    const lease = randomBytes(9).toString('base64url');
    this.put(sid, { lease, until: performance.now() + LEASE_MS }, LEASE_MS);
    return lease;
  }

  async fill(sid: string, lease: string, value: CachedSession, ttlMs: number): Promise<void> {
    const entry = this.live(sid);
    if (entry && 'lease' in entry && entry.lease === lease) this.put(sid, { value, until: performance.now() + ttlMs }, ttlMs);
  }

  async delete(sid: string): Promise<void> {
    this.entries.delete(sid);
  }

  private live(sid: string): Entry | undefined {
    const entry = this.entries.get(sid);
    if (entry && entry.until <= performance.now()) {
      this.entries.delete(sid);
      return undefined;
    }
    return entry;
  }

  private put(sid: string, entry: Entry, ttlMs: number): void {
    this.entries.delete(sid);
    if (ttlMs < 1) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(sid, entry);
  }
}
