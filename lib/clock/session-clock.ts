import type { EzSessionClock } from '../interfaces/ez-session-options.interface.js';

/**
 * Injection token of the clock every lifetime decision reads: the `clock` option, else the system
 * clock. Wall-clock time only (token iat/exp/sct, row, cache entry and tombstone expiry, the GC
 * cut-off): waits and timeouts (lock waits, statement deadlines, cache TTLs in Redis, timers)
 * measure elapsed time and stay on real time.
 */
export const EZ_SESSION_CLOCK = Symbol('EZ_SESSION_CLOCK');

/** `Date.now()`: the clock of an app that sets none. */
export const systemClock: EzSessionClock = { now: () => Date.now() };

/** A clock reading (ms) as the whole seconds of token claims. */
export function toSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}
