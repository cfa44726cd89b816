import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { EZ_SESSION_CLOCK } from '../clock/session-clock.js';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import type { EzSessionClock } from '../interfaces/ez-session-options.interface.js';
import type { HttpRequestLike } from '../http/http-request.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { RevocationRegistry } from '../revocation/revocation.registry.js';
import { RequestSession, type SessionOwner } from '../session/request-session.js';
import { SessionOpener } from '../session/session-opener.js';
import { fromAnotherOrigin } from '../policy/cross-origin.policy.js';
import type { PresentedToken } from '../token/token-transport.js';
import { closeEventOf, handshakeOf, sameHostOrigin, type UpgradeRequestLike } from './socket-handshake.js';

/** Nothing can be written back over a socket (no Set-Cookie): its session is read-only, and never asks for a commit. */
const READ_ONLY_OWNER: SessionOwner = {
  fingerprint: () => undefined,
  changed: () => undefined
};

interface EventSource {
  once(event: string, listener: () => void): unknown;
}

/** Called for each open socket of a session revoked anywhere. */
export type SocketRevokedListener<S = any> = (socket: S, sid: string) => void;

/**
 * The sessions of open WebSocket connections, one per socket, read-only. The token of the
 * handshake is checked once, when the socket's session is first asked for (signature, binding,
 * expiry, revocation: no I/O); the data is loaded at most once per socket. On every later ask
 * the in-memory revocation list and the absolute timeout are checked again, still without I/O:
 * a session revoked anywhere, or past its absolute lifetime, reads as no session at all from
 * the next message on.
 */
@Injectable()
export class SocketSessions implements OnApplicationShutdown {
  private readonly logger = new Logger('EzSession');
  private readonly sessions = new WeakMap<object, RequestSession>();
  /** Open sockets by session id, to tell the app whose sockets a revocation ended. */
  private readonly open = new Map<string, Set<object>>();
  private readonly listeners = new Set<SocketRevokedListener>();
  private readonly stopListening: () => void;

  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    private readonly opener: SessionOpener,
    private readonly revocations: RevocationRegistry,
    @Inject(EZ_SESSION_CLOCK) private readonly clock: EzSessionClock
  ) {
    this.stopListening = revocations.onRevoked((sid) => this.revoked(sid));
  }

  onApplicationShutdown(): void {
    this.stopListening();
  }

  /**
   * The session of `socket`, opened from its handshake on first ask. A `ws` socket keeps nothing
   * of its upgrade request, so its first ask must hand that over (`handleConnection(client, request)`).
   */
  sessionOf(socket: object, upgrade?: UpgradeRequestLike): RequestSession {
    const known = this.sessions.get(socket);
    if (known) return this.stillValid(socket, known);
    const handshake = handshakeOf(socket, upgrade);
    if (!handshake) {
      throw new Error(
        'EzSession: a ws socket keeps nothing of its upgrade request, so its session is opened at connection: in handleConnection(client, request), call sessions.claims(client, request) (or session(client, request)) once'
      );
    }
    const presented = this.opener.presented(handshake);
    const session = this.opener.open(handshake, READ_ONLY_OWNER, this.admitted(handshake, presented));
    this.sessions.set(socket, session);
    if (session.hadToken) this.track(socket, session.sid);
    return session;
  }

  /**
   * Cross-site WebSocket hijacking: a browser sends the cookie with a handshake any page starts, so
   * a cookie handshake from another origin gets no session (as if it had no cookie), rather than
   * an error the app's handleConnection would have to catch. Bearer tokens (`auth.token`) pass.
   */
  private admitted(handshake: HttpRequestLike, presented: PresentedToken | undefined): PresentedToken | undefined {
    const { csrf } = this.options;
    if (!presented || presented.carrier === 'bearer' || csrf === false) return presented;
    return fromAnotherOrigin(handshake.headers, () => sameHostOrigin(handshake.headers), csrf.trustedOrigins) ? undefined : presented;
  }

  /** Whether `session` is a socket's. */
  owns(session: RequestSession): boolean {
    return session.owner === READ_ONLY_OWNER;
  }

  /** Calls `listener` for each open socket whose session is revoked (here or on another instance), once. */
  onRevoked(listener: SocketRevokedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private stillValid(socket: object, session: RequestSession): RequestSession {
    if (!session.hadToken) return session;
    const now = this.clock.now() / 1000;
    if (!this.opener.endedBy(session.sid, session.createdAt, session.customClaims, session.lifetime, now)) return session;
    // From now on the socket has no session, as a request with that token would have none.
    const anonymous = new RequestSession({ claims: undefined, fingerprint: undefined, refresh: false, now: Math.floor(now) }, READ_ONLY_OWNER);
    this.sessions.set(socket, anonymous);
    this.untrack(socket, session.sid);
    return anonymous;
  }

  private track(socket: object, sid: string): void {
    let sockets = this.open.get(sid);
    if (!sockets) this.open.set(sid, (sockets = new Set()));
    sockets.add(socket);
    (socket as Partial<EventSource>).once?.(closeEventOf(socket), () => this.untrack(socket, sid));
  }

  private untrack(socket: object, sid: string): void {
    const sockets = this.open.get(sid);
    if (!sockets?.delete(socket) || sockets.size > 0) return;
    this.open.delete(sid);
  }

  private revoked(sid: string): void {
    const sockets = this.open.get(sid);
    if (!sockets) return;
    this.open.delete(sid);
    for (const socket of sockets) {
      for (const listener of this.listeners) {
        try {
          listener(socket, sid);
        } catch (error) {
          this.logger.error(`An onSocketRevoked listener threw: ${(error as Error)?.stack ?? String(error)}`);
        }
      }
    }
  }
}
