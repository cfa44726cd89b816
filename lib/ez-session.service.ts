import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, type ExecutionContext } from '@nestjs/common';
import { EZ_SESSION_CLOCK } from './clock/session-clock.js';
import type { EzSessionClock } from './interfaces/ez-session-options.interface.js';
import { exemptionKey, RevocationRegistry, type SessionRedis } from './revocation/revocation.registry.js';
import { userRevocationEnd } from './session/session-lifetime.js';
import { EZ_SESSION_OPTIONS, EZ_SESSION_REDIS } from './ez-session.constants.js';
import type { ResolvedOptions } from './options/resolved-options.js';
import { SessionGarbageCollector } from './storage/session-gc.js';
import { decodeDocument } from './session/session-document.js';
import type { RegenerateOptions } from './session/regenerate-options.js';
import { RequestSessions } from './session/request-sessions.js';
import { SessionManager } from './session/session.manager.js';
import { SessionRepository } from './storage/session.repository.js';
import { SessionTelemetry, type EzSessionMetrics } from './observability/session-telemetry.js';
import type { UpgradeRequestLike } from './ws/socket-handshake.js';
import type { SocketRevokedListener } from './ws/socket-sessions.js';
import { UserSessions, type ActiveSession } from './users/user-sessions.js';

export type { ActiveSession } from './users/user-sessions.js';

/**
 * The session of the current request, from anywhere that has its ExecutionContext or request
 * (guards, interceptors, pipes, handlers, resolvers, services), the read-only session of a
 * WebSocket connection, and control of any session by id (revoke, list, GC) for operators.
 */
@Injectable()
export class EzSessionService {
  constructor(
    private readonly requests: RequestSessions,
    private readonly sessions: SessionManager,
    private readonly repository: SessionRepository,
    private readonly gcRunner: SessionGarbageCollector,
    private readonly telemetry: SessionTelemetry,
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    @Inject(EZ_SESSION_REDIS) private readonly redis: SessionRedis,
    private readonly revocations: RevocationRegistry,
    @Inject(EZ_SESSION_CLOCK) private readonly clock: EzSessionClock,
    private readonly users: UserSessions
  ) {}

  /**
   * The current request's custom claims, read-only, with no I/O; `{}` without a valid token.
   * `context` is an ExecutionContext (of a route, a resolver or a gateway), a request, or a socket.
   * A `ws` socket keeps nothing of its upgrade request: its first ask, in `handleConnection(client,
   * request)`, passes that request as `upgrade` (socket.io sockets carry their handshake).
   */
  claims(context: ExecutionContext | object, upgrade?: UpgradeRequestLike): Readonly<Record<string, unknown>> {
    return this.requests.of(context, upgrade).readonlyClaims('the claims from EzSessionService.claims()');
  }

  /**
   * The current request's session data, read-only. Loaded at most once per request, whoever asks
   * (this, another guard, the handler's `@Session()`): a stored session costs one Redis GET for
   * the whole request (or GraphQL operation); an unstored one nothing. For a socket, at most once
   * per connection; `upgrade` as for `claims()`.
   */
  async session(context: ExecutionContext | object, upgrade?: UpgradeRequestLike): Promise<Readonly<Record<string, unknown>>> {
    const session = this.requests.of(context, upgrade);
    return this.requests.whenLoaded(session, () =>
      session.readonlyData('the session from EzSessionService.session()', 'To change it from a guard, an interceptor or a service, use EzSessionService.writableSession(context).')
    );
  }

  /**
   * The current request's session data as `@Session()` gives it: changes (at any depth) are stored
   * when the app answers, as a handler's would be. For guards, interceptors and services that record
   * something (a visit, a consent); loaded at most once per request, shared with every other asker.
   * Not over a WebSocket (nothing can be sent back there).
   */
  async writableSession(context: ExecutionContext | object): Promise<Record<string, unknown>> {
    const session = this.requests.writable(context, 'writableSession');
    return this.requests.whenLoaded(session, () => session.trackedData);
  }

  /**
   * Calls `listener(socket, sid)` for each open socket whose session gets revoked, on this instance
   * or another (logout, regeneration, `revoke`, `revokeAllForUser`), as soon as this instance learns
   * of it: the place to disconnect it (`socket.disconnect(true)`, `socket.close()`). Even without a
   * listener, such a socket reads as having no session from its next message on. Returns the
   * unsubscribe.
   */
  onSocketRevoked<S = any>(listener: SocketRevokedListener<S>): () => void {
    return this.requests.sockets.onRevoked(listener);
  }

  /**
   * Gives the current request's session a new id and revokes the old id everywhere. Call it on
   * login and on every privilege change (session fixation). Without options it keeps all data,
   * flash and claims; `{ keep: ['cart'] }` keeps only what it names (see RegenerateOptions), which
   * is what a login wants. Works from any handler, guard or service that has the request; the new
   * token goes out with the response.
   */
  async regenerate(context: ExecutionContext | object, options: RegenerateOptions = {}): Promise<void> {
    const session = this.requests.writable(context, 'regenerate');
    await this.requests.translated(session, this.sessions.regenerate(session, options));
  }

  /**
   * When the user last authenticated in the current request's session (`regenerate(context, {
   * authenticated: true })`), read from its token with no I/O; `undefined` when never.
   */
  authenticatedAt(context: ExecutionContext | object, upgrade?: UpgradeRequestLike): Date | undefined {
    const at = this.requests.of(context, upgrade).authenticatedAt;
    return at === undefined ? undefined : new Date(at * 1000);
  }

  /** The id of the current request's session, with no I/O; `undefined` when there is no session. */
  sessionId(context: ExecutionContext | object): string | undefined {
    return this.users.sessionId(context);
  }

  /**
   * Ends every other session of the current request's user (the `userId` option says where it is),
   * on every instance: "sign out everywhere else". Returns how many; 0 when the request has no user.
   */
  async revokeOthers(context: ExecutionContext | object): Promise<number> {
    return this.users.revokeOthers(context);
  }

  /** Ends session `sid` only if it belongs to `userId` (a devices page's "sign out" cannot end someone else's); `false` otherwise. */
  async revokeForUser(userId: string | number, sid: string): Promise<boolean> {
    return this.users.revokeForUser(userId, sid);
  }

  /** Deletes the current request's session, revokes its id and clears the cookie (logout), from any handler or resolver. */
  async destroy(context: ExecutionContext | object): Promise<void> {
    const session = this.requests.writable(context, 'destroy');
    await this.requests.translated(session, this.sessions.destroy(session));
  }

  /** Revokes any session by id: its row, its cache entry and every token naming it, on every instance. */
  async revoke(sid: string): Promise<void> {
    await this.sessions.revoke(sid);
  }

  /**
   * Live stored sessions of a user (needs the `userId` option), newest activity first, with the
   * device each was created on; `current` marks the session of `context` (a request). Sessions that
   * store nothing (claims only) have no row and are not listed.
   */
  async listForUser(userId: string | number, context?: ExecutionContext | object): Promise<ActiveSession[]> {
    return this.users.list('listForUser', userId, context);
  }

  /**
   * Logs a user out everywhere, except one session (e.g. the current one after a password change):
   * every token of the user's sessions begun before the call is refused from now on, on every
   * instance (within `revocationSyncInterval` while pub/sub is down), stored or not (with
   * `userId: { claim }`, also sessions that store nothing); each stored session is revoked by id.
   * Returns once a login after it can no longer be mistaken for an earlier one (at most a second
   * later: tokens count time in whole seconds). Returns how many stored sessions were revoked.
   */
  async revokeAllForUser(userId: string | number, options: { except?: string } = {}): Promise<number> {
    this.users.requireUserIdOption('revokeAllForUser');
    const id = String(userId);
    // Every session begun in this second or earlier: the next whole second is the cut-off.
    const cutoff = Math.floor(this.clock.now() / 1000) + 1;
    // A remembered session may live up to maxAbsoluteTimeout: the cut-off outlasts the longest one.
    const until = userRevocationEnd({ ...this.options, absoluteTimeout: Math.max(this.options.absoluteTimeout, this.options.maxAbsoluteTimeout) }, cutoff * 1000);
    await this.repository.revokeUser(this.revocations.userKey(id), cutoff * 1000, until, options.except === undefined ? undefined : exemptionKey(id, options.except));
    await this.revocations.announceUser(id, cutoff, until, options.except);
    const sessions = (await this.repository.findByUser(id)).filter((session) => session.sid !== options.except);
    for (const session of sessions) await this.sessions.revoke(session.sid);
    // A login right after this returns must not fall in the cut-off's second (a real-time wait: a test's clock may stand still).
    const wait = cutoff * 1000 - this.clock.now();
    if (wait > 0) await sleep(Math.min(wait, 1000));
    return sessions.length;
  }

  /** The data of a live stored session, read from the durable store; `undefined` when there is none. */
  async read(sid: string): Promise<Record<string, unknown> | undefined> {
    const row = await this.repository.find(sid);
    return row ? decodeDocument(row.data, row.flash).data : undefined;
  }

  /** Stored, unexpired sessions (Zebra_Session's get_active_sessions), from one indexed COUNT. */
  async countActive(): Promise<number> {
    const count = await this.repository.countActive();
    this.telemetry.activeSessionsCounted(count);
    return count;
  }

  /** Deletes expired sessions and tombstones now, in bounded batches; returns how many went. */
  async gc(): Promise<number> {
    return this.gcRunner.run();
  }

  /**
   * What this instance did since it started, as the OpenTelemetry instruments report it (README,
   * Observability): requests by resolution, writes by outcome (`writes`, `writeRetries`, ...),
   * round trips by `db.system` and operation, lock timeouts, revocations, GC, and the gauges.
   */
  metrics(): EzSessionMetrics {
    return this.telemetry.snapshot();
  }

  /** The settings in force (Zebra_Session's get_settings); secrets are never shown. */
  settings() {
    const o = this.options;
    return {
      idleTimeout: o.idleTimeout,
      absoluteTimeout: o.absoluteTimeout,
      lockTimeout: o.lockTimeout,
      gc: { interval: o.gcInterval, batchSize: o.gcBatchSize },
      revocationSyncInterval: o.revocationSyncInterval,
      cookie: { ...o.cookie, httpOnly: true },
      headerName: o.headerName,
      store: { dialect: o.dialect, tableName: o.tableName },
      cache: { kind: this.redis.client ? ((this.redis.client as { isCluster?: boolean }).isCluster ? 'redis-cluster' : 'redis') : 'memory', keyPrefix: o.keyPrefix, ttl: o.cacheTtl },
      bind: { userAgent: o.bind.userAgent, ip: o.bind.ip, custom: o.bind.custom !== undefined },
      userId: o.userId ?? null,
      maxSessionBytes: o.maxSessionBytes,
      clockSkew: o.clockSkew,
      sessionLifetime: { maxIdleTimeout: o.maxIdleTimeout, maxAbsoluteTimeout: o.maxAbsoluteTimeout },
      devices: { ...o.devices },
      maxSessionsPerUser: o.maxSessionsPerUser ?? null,
      onSessionLimit: o.onSessionLimit,
      signingKeys: { count: o.keys.length, current: o.keys[0].id ?? null }
    };
  }
}
