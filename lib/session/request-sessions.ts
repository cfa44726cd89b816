import type { ServerResponse } from 'node:http';
import { HttpException, Inject, Injectable, Logger, Optional, type ExecutionContext, type OnApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import { SessionLockTimeoutError } from '../ez-session.errors.js';
import { graphqlErrorOf, graphqlErrorPatch } from '../graphql/graphql-error.js';
import { answeredWithErrors } from '../graphql/graphql-request.js';
import { installFastifyHook } from '../http/fastify-response.hook.js';
import { arrivedOverHttps, isExecutionContext, requestKey, type HttpRequestLike } from '../http/http-request.js';
import { holdNodeResponse } from '../http/node-response.hook.js';
import { errorPatch, NO_PATCH, tokenHeaders, type ResponsePatch } from '../http/response-patch.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { crossOriginRefusal } from '../policy/cross-origin.policy.js';
import { exposesToken } from '../policy/token-exposure.policy.js';
import { socketOf, type UpgradeRequestLike } from '../ws/socket-handshake.js';
import { SocketSessions } from '../ws/socket-sessions.js';
import { wsErrorOf } from '../ws/ws-error.js';
import type { RequestSession, SessionOwner } from './request-session.js';
import { requestExchangeOf } from './request-target.js';
import { deviceOf, type DeviceDetails } from '../users/device-details.js';
import { SessionManager } from './session.manager.js';
import { SessionOpener } from './session-opener.js';

/** One request in flight: its session, and how to reach its response. */
class Exchange implements SessionOwner {
  session!: RequestSession;
  /** A GraphQL operation came in this request: its answer says in its body whether it failed, and errors take GraphQL's form. */
  graphql = false;

  constructor(
    private readonly sessions: RequestSessions,
    readonly request: HttpRequestLike,
    /** The framework's response, once someone who has it asked (Express can also reach it from the request). */
    public response: object | undefined
  ) {}

  fingerprint(): string | undefined {
    return this.sessions.opener.fingerprintOf(this.request);
  }

  changed(): void {
    this.sessions.awaitCommit(this);
  }

  private recordedDevice: DeviceDetails | undefined;

  /** Parsed once, when a stored session is created or regenerated in this request; never on a plain read. */
  device(): DeviceDetails {
    return (this.recordedDevice ??= this.sessions.deviceOf(this.request));
  }
}

const live = new Set<RequestSessions>();

/**
 * The sessions of the requests in flight, one per request, keyed by the request object every
 * layer shares (so a guard, a parameter decorator and a service call all get the same one). The
 * first to ask opens it from the token; the first change makes the response wait for the commit,
 * which runs once, when the app answers: Express's response is held until then, Fastify's goes
 * through one onSend hook. A request whose session nobody changed finishes without EzSession.
 * A GraphQL operation is one HTTP request, so all its resolvers share one session, committed once
 * the operation is answered. A socket's session (read-only) is kept by `sockets`.
 */
@Injectable()
export class RequestSessions implements OnApplicationShutdown {
  private readonly logger = new Logger('EzSession');
  private readonly exchanges = new WeakMap<object, Exchange>();
  private readonly fastify: boolean;

  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    readonly opener: SessionOpener,
    private readonly manager: SessionManager,
    readonly sockets: SocketSessions,
    @Optional() private readonly adapterHost?: HttpAdapterHost
  ) {
    const adapter = adapterHost?.httpAdapter;
    this.fastify = adapter?.getType?.() === 'fastify';
    if (this.fastify) installFastifyHook(adapter!.getInstance(), (raw) => this.pendingCommit(raw));
    live.add(this);
  }

  onApplicationShutdown(): void {
    live.delete(this);
  }

  /** What a stored session records of the device of `request` (the `devices` option). */
  deviceOf(request: HttpRequestLike): DeviceDetails {
    return deviceOf(request, this.options);
  }

  /**
   * The session behind `target`, opened on first ask: that of the request of an HTTP handler's or a
   * resolver's ExecutionContext, of a request, or of a GraphQL context object; that of the socket of
   * a gateway's context, or of a socket (`upgrade`: a `ws` socket's upgrade request, on its first ask).
   */
  of(target: ExecutionContext | object, upgrade?: UpgradeRequestLike): RequestSession {
    const exchange = requestExchangeOf(target);
    if (exchange) return this.sessionOf(exchange.request, exchange.response, exchange.graphql, isExecutionContext(target) ? target : undefined);
    const socket = socketOf(target);
    if (socket) return this.sockets.sessionOf(socket, upgrade);
    throw new Error(`EzSession: no HTTP request or socket in this context (${describe(target)}); sessions are read from HTTP requests, GraphQL operations and WebSocket handshakes`);
  }

  /** Like `of`, for an operation that changes the session: a socket's session cannot be changed (nothing can be sent back over it). */
  writable(target: ExecutionContext | object, operation: string): RequestSession {
    const session = this.of(target);
    if (this.sockets.owns(session)) {
      throw new Error(`EzSession: ${operation}() cannot run over a WebSocket: a socket's session is read-only (no token can be sent back). Call it from an HTTP handler or a resolver, or end the session with revoke(sid).`);
    }
    return session;
  }

  /**
   * `context`, when the session is reached through one, tells whether the route is marked
   * `@SkipCsrf()`. A refused request gets no session (and so touches none): every ask throws.
   */
  sessionOf(request: HttpRequestLike, response: object | undefined, graphql = false, context?: ExecutionContext): RequestSession {
    const key = requestKey(request);
    const known = this.exchanges.get(key);
    if (known) {
      known.response ??= response;
      if (graphql) known.graphql = true;
      return known.session;
    }
    const presented = this.opener.presented(request);
    const refusal = crossOriginRefusal(request, presented?.carrier, this.options, context);
    if (refusal) throw graphql ? graphqlErrorOf(refusal) : refusal;
    const exchange = new Exchange(this, request, response);
    exchange.graphql = graphql;
    exchange.session = this.opener.open(request, exchange, presented);
    this.exchanges.set(key, exchange);
    // A token due for renewal is re-issued by whatever request asks for its session.
    if (exchange.session.refresh) exchange.session.changed();
    if (exchange.session.uncounted) nodeResponseOf(exchange)?.once('close', () => this.manager.countUnread(exchange.session));
    return exchange.session;
  }

  /**
   * Runs `view` once the session's data is loaded (at most one read per request, shared by every
   * asker); a plain value, without a promise, when nothing has to be read.
   */
  whenLoaded<T>(session: RequestSession, view: () => T): T | Promise<T> {
    const loading = this.manager.load(session);
    if (!loading) return view();
    const exchange = session.owner instanceof Exchange ? session.owner : undefined;
    // An HTTP handler gets EzSession's errors as they are (Nest answers them with their status).
    return exchange && !exchange.graphql ? loading.then(view) : loading.then(view, (error: unknown) => this.rethrow(session, error));
  }

  /** `@Session({ lock: true })`: the data read under the session's lock, which is held until the commit. */
  async whenLocked<T>(session: RequestSession, view: () => T): Promise<T> {
    await this.translated(session, this.manager.loadLocked(session));
    return view();
  }

  /**
   * Runs `work` for the session; an error it throws reaches the app in the form its transport
   * answers: as it is for an HTTP handler, as a GraphQL error with `extensions.code` in a resolver,
   * as a WsException in a gateway. A lock timeout's answer still says when to retry: the header
   * goes onto the response (when it can be reached) before the exception does.
   */
  async translated<T>(session: RequestSession, work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      return this.rethrow(session, error);
    }
  }

  private async rethrow(session: RequestSession, error: unknown): Promise<never> {
    const exchange = session.owner instanceof Exchange ? session.owner : undefined;
    const response = exchange?.response ?? exchange?.request.res;
    if (error instanceof SessionLockTimeoutError && response) {
      this.adapterHost?.httpAdapter?.setHeader(response, 'Retry-After', String(Math.ceil(error.lockTimeout)));
    }
    if (exchange?.graphql) throw graphqlErrorOf(error);
    if (!exchange) throw await wsErrorOf(error);
    throw error;
  }

  /** Whether this instance serves requests that arrive on `server` (several apps may share a process). */
  serves(server: unknown): boolean {
    // Read when asked: Express's server is created after the providers.
    return server !== undefined && server === this.adapterHost?.httpAdapter?.getHttpServer?.();
  }

  /** The session of `exchange` changed: its answer must wait for the commit. */
  awaitCommit(exchange: Exchange): void {
    const raw = nodeResponseOf(exchange);
    // A response that closes before the app answered it (the client left, or a handler never
    // answered) must not keep a session lock: nothing of the request is written then.
    raw?.once('close', () => {
      if (!exchange.session.committed) void this.abandon(exchange.session);
    });
    if (this.fastify) return;
    if (!raw) {
      this.logger.error('EzSession: a session changed on a request whose response cannot be reached; the change is not stored');
      exchange.session.committed = true;
      return;
    }
    if (!holdNodeResponse(raw, (status, body) => this.finish(exchange, status, body))) {
      this.logger.error('EzSession: the session changed after the response was sent; the change is not stored. Change it before answering (with @Res(), before res.send / res.redirect).');
      void this.abandon(exchange.session);
    }
  }

  private pendingCommit(raw: object): ((status: number, body: unknown) => Promise<ResponsePatch>) | undefined {
    const exchange = this.exchanges.get(raw);
    return exchange?.session.awaitsCommit ? (status, body) => this.finish(exchange, status, body) : undefined;
  }

  /**
   * Commits and says what the answer gets; never rejects (an unexpected error becomes a logged 500,
   * or a GraphQL error answer). An error answer keeps none of the request's changes: an error status,
   * or for a GraphQL operation an answer with `errors` (GraphQL answers 200 when a resolver fails).
   */
  private async finish(exchange: Exchange, status: number, body: unknown): Promise<ResponsePatch> {
    const failed = status >= 400 || (exchange.graphql && answeredWithErrors(body));
    try {
      const issued = await this.manager.commit(exchange.session, failed);
      return issued ? tokenHeaders(this.options, issued, this.deliveryTo(exchange)) : NO_PATCH;
    } catch (error) {
      // EzSession's own errors (lock timeout, store down, unstorable data) are answers; anything else is a bug to see in the log.
      if (!(error instanceof HttpException)) this.logger.error(`Session commit failed: ${(error as Error)?.stack ?? String(error)}`);
      return exchange.graphql ? graphqlErrorPatch(error) : errorPatch(error);
    }
  }

  private deliveryTo(exchange: Exchange): { secure: boolean; header: boolean } {
    const { cookie, tokenHeader } = this.options;
    return {
      secure: cookie.secure === 'auto' ? arrivedOverHttps(exchange.request) : cookie.secure,
      header: exposesToken(tokenHeader, exchange.request, exchange.session.carrier)
    };
  }

  private async abandon(session: RequestSession): Promise<void> {
    session.committed = true;
    await this.manager.release(session).catch((error: Error) => this.logger.error(`Could not release a session lock: ${error.message}`));
  }
}

/**
 * The EzSession instance serving `request`. One app per process is the rule, and then this is a
 * set lookup; with several, the one whose HTTP server accepted the request's connection.
 */
export function requestSessionsFor(request: HttpRequestLike | object): RequestSessions {
  if (live.size === 1) return live.values().next().value as RequestSessions;
  if (live.size === 0) throw new Error('EzSession: EzSessionModule is not running in this app. Import EzSessionModule.forRoot() (or forRootAsync()) in the root module.');
  const server = (requestKey(request as HttpRequestLike) as { socket?: { server?: unknown } }).socket?.server;
  for (const instance of live) if (instance.serves(server)) return instance;
  throw new Error('EzSession: several apps with EzSessionModule run in this process, and none of them serves this request');
}

function nodeResponseOf(exchange: Exchange): ServerResponse | undefined {
  const response = (exchange.response ?? exchange.request.res) as (ServerResponse & { raw?: ServerResponse }) | undefined;
  const raw = response?.raw ?? response;
  return typeof raw?.writeHead === 'function' ? raw : undefined;
}

function describe(target: object): string {
  const type = (target as ExecutionContext).getType?.();
  return type ? `context type "${type}"` : 'not a request';
}
