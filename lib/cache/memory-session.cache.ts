import { SessionCache, type CachedSession } from './session-cache.js';

const MAX_ENTRIES = 10_000;

/** In-process cache for a single instance (development, tests of one process). Bounded; oldest entries go first. */
export class MemorySessionCache extends SessionCache {
  private readonly entries = new Map<string, { value: CachedSession; until: number }>();

  async get(sid: string): Promise<CachedSession | undefined> {
    const entry = this.entries.get(sid);
    if (!entry) return undefined;
    if (entry.until <= Date.now()) {
      this.entries.delete(sid);
      return undefined;
    }
    return entry.value;
  }

  async set(sid: string, value: CachedSession, ttlMs: number): Promise<void> {
    this.entries.delete(sid);
    if (ttlMs < 1) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(sid, { value, until: Date.now() + ttlMs });
  }

  async fill(sid: string, value: CachedSession, ttlMs: number): Promise<void> {
    if (!(await this.get(sid))) await this.set(sid, value, ttlMs);
  }

  async delete(sid: string): Promise<void> {
    this.entries.delete(sid);
  }
}
