import { Inject, Injectable } from '@nestjs/common';
import { EZ_SESSION_CLOCK } from '../clock/session-clock.js';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import type { EzSessionClock } from '../interfaces/ez-session-options.interface.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { cacheTtl, expiryFrom, revocationEnd } from './session-lifetime.js';

/** What a lifetime decision needs of a session: when it started (seconds) and its own lifetime, if it has one. */
export interface LifetimeHolder {
  createdAt: number;
  lifetime: [idle: number, absolute: number] | undefined;
}

/** A lifetime asked for with `regenerate(context, { idleTimeout, absoluteTimeout })`. */
export interface RequestedLifetime {
  idleTimeout?: number;
  absoluteTimeout?: number;
}

/**
 * Every lifetime decision, for every session, in one place: the token's `exp` and refresh, the
 * cookie's Max-Age, the row's expiry and its extension, the cache TTL, the absolute timeout checked
 * when a token or a socket is opened, and how long a tombstone lasts. A session with its own
 * lifetime ("remember me") carries it in its token (`lt`), so each of these is decided with no I/O.
 * Times: `now` in ms of the session clock unless named `...Seconds`.
 */
@Injectable()
export class SessionLifetimes {
  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    @Inject(EZ_SESSION_CLOCK) private readonly clock: EzSessionClock
  ) {}

  /** The idle timeout of `session` (seconds), within the module's bounds whatever its token says. */
  idle(session: Pick<LifetimeHolder, 'lifetime'>): number {
    return session.lifetime ? Math.min(session.lifetime[0], this.options.maxIdleTimeout) : this.options.idleTimeout;
  }

  /** The absolute timeout of `session` (seconds), within the module's bounds. */
  absolute(session: Pick<LifetimeHolder, 'lifetime'>): number {
    return session.lifetime ? Math.min(session.lifetime[1], this.options.maxAbsoluteTimeout) : this.options.absoluteTimeout;
  }

  /**
   * A requested lifetime as the token carries it; an omitted part is the module's. Refused (a
   * programming error, answered 500) outside 1 s .. `maxIdleTimeout` / `maxAbsoluteTimeout`, or with
   * an absolute timeout shorter than the idle one.
   */
  requested(requested: RequestedLifetime): [number, number] {
    const idle = requested.idleTimeout ?? this.options.idleTimeout;
    const absolute = requested.absoluteTimeout ?? Math.max(this.options.absoluteTimeout, idle);
    check('idleTimeout', idle, this.options.maxIdleTimeout, 'maxIdleTimeout');
    check('absoluteTimeout', absolute, this.options.maxAbsoluteTimeout, 'maxAbsoluteTimeout');
    if (absolute < idle) throw new RangeError(`EzSession: regenerate(): absoluteTimeout (${absolute}) must not be shorter than idleTimeout (${idle})`);
    return [idle, absolute];
  }

  /** The `exp` of a token issued at `nowSeconds`: the idle window, never past the absolute timeout. */
  tokenExpiry(session: LifetimeHolder, nowSeconds: number): number {
    return Math.min(nowSeconds + this.idle(session), session.createdAt + this.absolute(session));
  }

  /**
   * The cookie's Max-Age for a token expiring at `exp`; `undefined` for a browser-session cookie
   * (`cookie.browserSession`: sessions without their own lifetime end with the browser).
   */
  cookieMaxAge(session: LifetimeHolder, exp: number, nowSeconds: number): number | undefined {
    if (this.options.cookie.browserSession && !session.lifetime) return undefined;
    return exp - nowSeconds;
  }

  /** The row's expiry after activity at `now`. */
  rowExpiry(session: LifetimeHolder, now: number): number {
    return expiryFrom({ ...this.options, idleTimeout: this.idle(session), absoluteTimeout: this.absolute(session) }, now, session.createdAt * 1000);
  }

  cacheTtl(expiresAt: number, now: number): number {
    return cacheTtl(this.options, expiresAt, now);
  }

  /** A tombstone outlives the longest token any session can hold: the longest idle window allowed, plus the skew. */
  revocationEnd(now = this.clock.now()): number {
    return revocationEnd({ ...this.options, idleTimeout: Math.max(this.options.idleTimeout, this.options.maxIdleTimeout) }, now);
  }

  /** Less than half the session's idle window left on the row as loaded, and the absolute cap still leaves room to extend it. */
  extensionDue(session: LifetimeHolder, loadedExpiresAt: number, now: number): boolean {
    return loadedExpiresAt - now <= (this.idle(session) * 1000) / 2 && this.rowExpiry(session, now) > loadedExpiresAt;
  }

  /**
   * Whether a session created at `createdAt` (seconds) with `lifetime` has reached its absolute
   * timeout at `exactNowSeconds`. Asked on every request with a token: plain arguments, no allocation.
   */
  absoluteEnded(createdAt: number, lifetime: LifetimeHolder['lifetime'], exactNowSeconds: number): boolean {
    return createdAt + (lifetime ? Math.min(lifetime[1], this.options.maxAbsoluteTimeout) : this.options.absoluteTimeout) <= exactNowSeconds;
  }

  /** A token issued at `iat` is re-issued once half the session's idle window has passed. */
  refreshDue(lifetime: LifetimeHolder['lifetime'], iat: number, exactNowSeconds: number): boolean {
    return exactNowSeconds - iat >= (lifetime ? Math.min(lifetime[0], this.options.maxIdleTimeout) : this.options.idleTimeout) / 2;
  }
}

function check(name: string, value: number, max: number, bound: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 1 || value > max) {
    throw new RangeError(`EzSession: regenerate(): ${name} must be a number of seconds from 1 to ${max} (the ${bound} option); got ${JSON.stringify(value)}`);
  }
}
