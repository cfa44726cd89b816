import { Inject, Injectable } from '@nestjs/common';
import { EZ_SESSION_CLOCK } from '../clock/session-clock.js';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import type { HttpRequestLike } from '../http/http-request.js';
import type { EzSessionClock } from '../interfaces/ez-session-options.interface.js';
import { REFUSED, type CounterKey } from '../observability/instruments.js';
import { SessionTelemetry } from '../observability/session-telemetry.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { RevocationRegistry } from '../revocation/revocation.registry.js';
import type { SessionClaims } from '../token/session-claims.js';
import { SessionTokenCodec } from '../token/session-token.codec.js';
import { readToken, type PresentedToken } from '../token/token-transport.js';
import { RequestSession, type SessionOwner } from './request-session.js';
import { SessionEvents } from './session-events.js';
import { SessionLifetimes, type LifetimeHolder } from './session-lifetimes.js';

/**
 * Turns a request's token into its RequestSession, with no I/O: signature, claim shapes, expiry,
 * the absolute timeout, the in-memory revocation list and the binding are all checked here. A
 * token that fails any of them is treated as no token at all.
 */
@Injectable()
export class SessionOpener {
  // Most requests come from a few user agents: remembering their hashes saves an HMAC per request.
  private readonly fingerprints = new Map<string, string>();

  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    private readonly codec: SessionTokenCodec,
    private readonly revocations: RevocationRegistry,
    private readonly events: SessionEvents,
    @Inject(EZ_SESSION_CLOCK) private readonly clock: EzSessionClock,
    private readonly lifetimes: SessionLifetimes,
    private readonly telemetry: SessionTelemetry
  ) {}

  /** The token the request carries and how; a Bearer token that is not this app's is passed over for the cookie. */
  presented(request: HttpRequestLike): PresentedToken | undefined {
    return readToken(request.headers, this.options.cookie.name, this.isOurs);
  }

  // Made once, not per request.
  private readonly isOurs = (token: string) => this.codec.isOurs(token);

  /**
   * Why a session that verified is over anyway at `exactNow` (seconds): revoked (its id, or its user
   * logged out everywhere since it began) or past its absolute timeout. Asked when a request opens it
   * and again on every socket message, so that both refuse by the same rules.
   */
  endedBy(sid: string, createdAt: number, custom: SessionClaims['custom'], lifetime: LifetimeHolder['lifetime'], exactNow: number): 'revoked' | 'expired' | undefined {
    if (this.revocations.has(sid) || this.revocations.refusesUser(sid, createdAt, custom)) return 'revoked';
    if (this.lifetimes.absoluteEnded(createdAt, lifetime, exactNow)) return 'expired';
    return undefined;
  }

  /** `presented`: what `presented(request)` found, or `undefined` to open it as carrying no token. */
  open(request: HttpRequestLike, owner: SessionOwner, presented: PresentedToken | undefined): RequestSession {
    const exactNow = this.clock.now() / 1000;
    const now = Math.floor(exactNow);
    const verdict = this.codec.verify(presented?.token, now);
    let claims: SessionClaims | undefined;
    let fingerprint: string | undefined | null;
    // Counted once per request that asks: here, unless its data is stored (then where the data comes from, see SessionManager).
    let resolution: CounterKey | undefined = verdict.valid ? undefined : verdict.reason === 'absent' ? 'requestsNone' : ((REFUSED as Record<string, CounterKey>)[verdict.reason] ?? 'refusedMalformed');
    if (verdict.valid) {
      const candidate = verdict.claims;
      const bound = this.bindingOf(request);
      const ended = this.endedBy(candidate.sid, candidate.sct, candidate.custom, candidate.lt, exactNow);
      if (ended === 'revoked') {
        // A revoked id, or a user logged out everywhere since the session began: treated as no token, silently.
        resolution = 'refusedRevoked';
      } else if (ended === 'expired') {
        resolution = 'refusedExpired';
        this.events.emit({ type: 'expired', sid: candidate.sid, reason: 'absolute' });
      } else if (bound !== undefined && candidate.fp !== this.fingerprintWith(bound, verdict.key)) {
        // Refused, and a new id issued; the owner's stored data is left alone (a thief must not be able to wipe it).
        resolution = 'refusedFingerprint';
        this.events.emit({ type: 'fingerprintMismatch', sid: candidate.sid });
      } else {
        if (!candidate.stored) resolution = 'requestsClaims';
        claims = candidate;
        // A token signed with an older key is re-issued with the current one, so its binding hash is recomputed.
        fingerprint = verdict.key === 0 ? candidate.fp : null;
      }
    } else if (verdict.reason === 'expired') {
      this.events.emit({ type: 'expired', sid: verdict.sid, reason: 'token' });
    }
    // iat is whole seconds: age is measured against the exact time, so a token is never refreshed late.
    const refresh = claims !== undefined && (this.lifetimes.refreshDue(claims.lt, claims.iat, exactNow) || (verdict.valid && verdict.key !== 0));
    const session = new RequestSession({ claims, fingerprint: claims ? fingerprint : null, refresh, now, carrier: presented?.carrier }, owner);
    if (resolution) this.telemetry.count(resolution);
    else session.uncounted = true;
    return session;
  }

  private bindingOf(request: HttpRequestLike): string | undefined {
    const { userAgent, ip, custom } = this.options.bind;
    if (!userAgent && !ip && !custom) return undefined;
    const agent = userAgent ? String(request.headers['user-agent'] ?? '') : '';
    return `${agent}\n${ip ? (request.ip ?? '') : ''}\n${custom ? String(custom(request)) : ''}`;
  }

  /** The binding hash for a token issued to this request's client. */
  fingerprintOf(request: HttpRequestLike): string | undefined {
    const binding = this.bindingOf(request);
    return binding === undefined ? undefined : this.fingerprintWith(binding, 0);
  }

  private fingerprintWith(binding: string, key: number): string {
    const memo = `${key}\n${binding}`;
    let fingerprint = this.fingerprints.get(memo);
    if (fingerprint === undefined) {
      fingerprint = this.codec.fingerprint(binding, key);
      if (this.fingerprints.size >= 10_000) this.fingerprints.clear();
      this.fingerprints.set(memo, fingerprint);
    }
    return fingerprint;
  }
}
