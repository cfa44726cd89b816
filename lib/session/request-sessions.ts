import type { ServerResponse } from 'node:http';
import { HttpException, Inject, Injectable, Logger, Optional, type ExecutionContext, type OnApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import { SessionLockTimeoutError } from '../ez-session.errors.js';
import { installFastifyHook } from '../http/fastify-response.hook.js';
import { httpExchangeOf, requestKey, type HttpRequestLike } from '../http/http-request.js';
import { holdNodeResponse } from '../http/node-response.hook.js';
import { errorPatch, tokenHeaders, type ResponsePatch } from '../http/response-patch.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import type { RequestSession, SessionOwner } from './request-session.js';
import { SessionManager } from './session.manager.js';
import { SessionOpener } from './session-opener.js';

/** One request in flight: its session, and how to reach its response. */
class Exchange implements SessionOwner {
  session!: RequestSession;

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
}

const live = new Set<RequestSessions>();

/**
 * The sessions of the requests in flight, one per request, keyed by the request object every
 * layer shares (so a guard, a parameter decorator and a service call all get the same one). The
 * first to ask opens it from the token; the first change makes the response wait for the commit,
 * which runs once, when the app answers: Express's response is held until then, Fastify's goes
 * through one onSend hook. A request whose session nobody changed finishes without EzSession.
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

  /** The session of the request behind `target` (an ExecutionContext or a request), opened on first ask. */
  of(target: ExecutionContext | object): RequestSession {
    const exchange = httpExchangeOf(target);
    if (!exchange) throw new Error(`EzSession: no HTTP request in this context (${describe(target)}); sessions are read from HTTP requests`);
    return this.sessionOf(exchange.request, exchange.response);
  }

  /** The session already opened for this request, if any. */
  find(target: ExecutionContext | object): RequestSession | undefined {
    const exchange = httpExchangeOf(target);
    return exchange && this.exchanges.get(requestKey(exchange.request))?.session;
  }

  sessionOf(request: HttpRequestLike, response: object | undefined): RequestSession {
    const key = requestKey(request);
    const known = this.exchanges.get(key);
    if (known) {
      known.response ??= response;
      return known.session;
    }
    const exchange = new Exchange(this, request, response);
    exchange.session = this.opener.open(request, exchange);
    this.exchanges.set(key, exchange);
    // A token due for renewal is re-issued by whatever request asks for its session.
    if (exchange.session.refresh) exchange.session.changed();
    return exchange.session;
  }

  /**
   * Runs `view` once the session's data is loaded (at most one read per request, shared by every
   * asker); a plain value, without a promise, when nothing has to be read.
   */
  whenLoaded<T>(session: RequestSession, view: () => T): T | Promise<T> {
    const loading = this.manager.load(session);
    return loading ? loading.then(view) : view();
  }

  /** `@Session({ lock: true })`: the data read under the session's lock, which is held until the commit. */
  async whenLocked<T>(session: RequestSession, view: () => T): Promise<T> {
    await this.retryAfterLockTimeout(session, this.manager.loadLocked(session));
    return view();
  }

  /**
   * A lock timeout reaches the app as an exception (Nest answers it), and the answer still says
   * when to retry: the header goes onto the response before the exception does.
   */
  async retryAfterLockTimeout<T>(session: RequestSession, work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      const exchange = session.owner instanceof Exchange ? session.owner : undefined;
      const response = exchange?.response ?? exchange?.request.res;
      if (error instanceof SessionLockTimeoutError && response) {
        this.adapterHost?.httpAdapter?.setHeader(response, 'Retry-After', String(Math.ceil(error.lockTimeout)));
      }
      throw error;
    }
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
    if (!holdNodeResponse(raw, (status) => this.finish(exchange.session, status))) {
      this.logger.error('EzSession: the session changed after the response was sent; the change is not stored. Change it before answering (with @Res(), before res.send / res.redirect).');
      void this.abandon(exchange.session);
    }
  }

  private pendingCommit(raw: object): ((status: number) => Promise<ResponsePatch>) | undefined {
    const session = this.exchanges.get(raw)?.session;
    return session?.awaitsCommit ? (status) => this.finish(session, status) : undefined;
  }

  /** Commits and says what the answer gets; never rejects (an unexpected error becomes a logged 500). */
  private async finish(session: RequestSession, status: number): Promise<ResponsePatch> {
    try {
      return tokenHeaders(this.options, await this.manager.commit(session, status >= 400));
    } catch (error) {
      // EzSession's own errors (lock timeout, store down, unstorable data) are answers; anything else is a bug to see in the log.
      if (!(error instanceof HttpException)) this.logger.error(`Session commit failed: ${(error as Error)?.stack ?? String(error)}`);
      return errorPatch(error);
    }
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
export function requestSessionsFor(request: HttpRequestLike): RequestSessions {
  if (live.size === 1) return live.values().next().value as RequestSessions;
  if (live.size === 0) throw new Error('EzSession: EzSessionModule is not running in this app. Import EzSessionModule.forRoot() (or forRootAsync()) in the root module.');
  const server = (requestKey(request) as { socket?: { server?: unknown } }).socket?.server;
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
