import type { EzSessionClock } from '../../lib/index.js';

export const SECOND = 1000;

/**
 * A clock the spec moves (the `clock` option): sessions, tokens, cache entries and tombstones
 * expire when the spec says so, to the millisecond, without waiting. It stands still between moves.
 *
 * It starts years away from the real time, so that a reading of the real clock anywhere in
 * EzSession shows: a session the manual clock keeps alive would read as long expired, or a token
 * it issued as from the future.
 */
export class ManualClock implements EzSessionClock {
  private time: number;

  constructor(start = Date.UTC(2031, 0, 1)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  /** Moves on by `ms` milliseconds. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new Error(`a clock only moves forward; asked to move by ${ms} ms`);
    this.time += ms;
  }

  /** Moves on to `ms` (milliseconds since the epoch), which must not be in the clock's past. */
  advanceTo(ms: number): void {
    this.advance(ms - this.time);
  }

  /** Moves on to a whole second a day or more ahead: what a spec did before is long expired, and token times (whole seconds) are exact. */
  nextDay(): number {
    this.advanceTo(Math.ceil((this.time + 86_400 * SECOND) / SECOND) * SECOND);
    return this.time;
  }
}
