/** A stored session as the cache keeps it: the serialized document, its row version, and when the session ends. */
export interface CachedSession {
  data: string;
  flash: string;
  expiresAt: number;
  version: number;
}

/**
 * The cache in front of the durable store. Reads fail open (a failed read is a miss, served from
 * MySQL); writes never fail a request, because MySQL has already committed when they run.
 *
 * It must never go back in time. A writer's value replaces an entry only if it is newer (the row
 * version decides), and a reader that missed refills only through the lease it took before reading
 * the row: any write or delete since, and any flush or eviction, voids the lease, so a row read
 * before a newer write can never land after it.
 */
export abstract class SessionCache {
  abstract get(sid: string): Promise<CachedSession | undefined>;
  /** Stores the value a write committed, unless the entry already holds that version or a newer one. */
  abstract set(sid: string, value: CachedSession, ttlMs: number): Promise<void>;
  /** After a miss, before reading the row: a lease for the refill, or `undefined` when another reader (or a writer) is there first. */
  abstract lease(sid: string): Promise<string | undefined>;
  /** Refills with the row read after `lease` was taken, if the lease still stands. */
  abstract fill(sid: string, lease: string, value: CachedSession, ttlMs: number): Promise<void>;
  abstract delete(sid: string): Promise<void>;
}

/** How long a lease stands: long enough for one SELECT, short enough that a crashed reader's lease is soon gone. */
export const LEASE_MS = 5_000;

/** An entry without its version stamp (`v<version>.<replid>`, added by the client when it knows the reign, else by the write script). */
export function encodeUnstamped(value: CachedSession): string {
  return `${value.expiresAt}\n${value.data}\n${value.flash}`;
}

// `v` first: a lease, or an entry an older release wrote (it began with a digit), never passes for a
// value. JSON.stringify never emits a raw newline, so newlines separate the parts without escaping.
export function encodeCached(value: CachedSession, stamp = ''): string {
  return `v${value.version}${stamp ? `.${stamp}` : ''}\n${encodeUnstamped(value)}`;
}

/** An entry, or `undefined` for nothing, a lease, or an entry an older release wrote. */
export function decodeCached(text: string | null | undefined): CachedSession | undefined {
  if (!text || text.charCodeAt(0) !== 118 /* v */) return undefined;
  const first = text.indexOf('\n');
  const second = text.indexOf('\n', first + 1);
  const third = text.indexOf('\n', second + 1);
  if (first < 0 || second < 0 || third < 0) return undefined;
  const dot = text.indexOf('.', 1);
  const version = Number(text.slice(1, dot > 0 && dot < first ? dot : first));
  const expiresAt = Number(text.slice(first + 1, second));
  if (!Number.isInteger(version) || !Number.isFinite(expiresAt)) return undefined;
  return { version, expiresAt, data: text.slice(second + 1, third), flash: text.slice(third + 1) };
}
