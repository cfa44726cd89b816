/** A stored session as the cache keeps it: the serialized document and when the session ends. */
export interface CachedSession {
  data: string;
  flash: string;
  expiresAt: number;
}

/**
 * The cache in front of the durable store. Reads fail open (a failed read is a miss, served from
 * MySQL); writes never fail a request, because MySQL has already committed when they run.
 */
export abstract class SessionCache {
  abstract get(sid: string): Promise<CachedSession | undefined>;
  /** Stores the value written under the session lock. */
  abstract set(sid: string, value: CachedSession, ttlMs: number): Promise<void>;
  /** Refills after a miss, only if nothing is there: a writer's newer value always wins. */
  abstract fill(sid: string, value: CachedSession, ttlMs: number): Promise<void>;
  abstract delete(sid: string): Promise<void>;
}

// JSON.stringify never emits a raw newline, so a newline separates the parts without escaping.
export function encodeCached(value: CachedSession): string {
  return `${value.expiresAt}\n${value.data}\n${value.flash}`;
}

export function decodeCached(text: string | null | undefined): CachedSession | undefined {
  if (!text) return undefined;
  const first = text.indexOf('\n');
  const second = text.indexOf('\n', first + 1);
  const expiresAt = Number(text.slice(0, first));
  if (first < 0 || second < 0 || !Number.isFinite(expiresAt)) return undefined;
  return { expiresAt, data: text.slice(first + 1, second), flash: text.slice(second + 1) };
}
