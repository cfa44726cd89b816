import type { ResolvedOptions } from '../options/resolved-options.js';

type Lifetimes = Pick<ResolvedOptions, 'idleTimeout' | 'absoluteTimeout' | 'cacheTtl' | 'clockSkew'>;

// Every `now` is a reading of the session clock (ms since the epoch), passed in by the caller.

/** A row's expiry after activity at `now` (ms): idle timeout later, never past the absolute timeout from `createdAt` (ms). */
export function expiryFrom(options: Lifetimes, now: number, createdAt: number): number {
  return Math.min(now + options.idleTimeout * 1000, createdAt + options.absoluteTimeout * 1000);
}

/** A cache entry never outlives its session: it ends a second early, to cover the time the SET takes to land. */
export function cacheTtl(options: Lifetimes, expiresAt: number, now: number): number {
  return Math.min(options.cacheTtl * 1000, expiresAt - now - 1000);
}

/** A tombstone lasts as long as the longest token that could still name the id. */
export function revocationEnd(options: Lifetimes, now: number): number {
  return now + (options.idleTimeout + options.clockSkew) * 1000;
}

/**
 * How long a user's cut-off (`revokeAllForUser`) must be kept: until every session begun before
 * it has passed its absolute timeout, however often its token was renewed meanwhile.
 */
export function userRevocationEnd(options: Lifetimes, cutoffMs: number): number {
  return cutoffMs + (options.absoluteTimeout + options.clockSkew) * 1000;
}
