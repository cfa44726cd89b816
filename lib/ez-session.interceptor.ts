import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { catchError, concatMap, finalize, from, of, switchMap, throwError, type Observable } from 'rxjs';
import { EZ_SESSION_OPTIONS } from './ez-session.constants.js';
import { SessionLockTimeoutError } from './ez-session.errors.js';
import type { ResolvedOptions } from './options/resolved-options.js';
import type { RequestSession } from './session/request-session.js';
import { findRequestSession } from './session/request-session.registry.js';
import { SessionManager, type HttpRequestLike, type IssuedToken } from './session/session.manager.js';
import { getUsage } from './session/session-usage.js';
import { serializeCookie } from './token/token-transport.js';

/**
 * Put on each handler that takes an EzSession decorator (by the decorator itself; handlers without
 * one never meet it). It opens the session before the handler and, once the handler has returned,
 * commits what changed and sends the new token with the response.
 */
@Injectable()
export class EzSessionInterceptor implements NestInterceptor {
  constructor(
    private readonly sessions: SessionManager,
    private readonly adapterHost: HttpAdapterHost,
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const usage = getUsage(context.getHandler());
    if (!usage || context.getType() !== 'http') return next.handle();
    const http = context.switchToHttp();
    const request = http.getRequest<HttpRequestLike>();
    const response = http.getResponse<object>();

    const opened = this.sessions.open(request, usage);
    const handled = opened instanceof Promise ? from(opened).pipe(switchMap((session) => this.run(next, session, response))) : this.run(next, opened, response);
    return handled.pipe(
      finalize(() => {
        const session = findRequestSession(request);
        if (session) void this.sessions.release(session);
      }),
      catchError((error: unknown) => {
        if (error instanceof SessionLockTimeoutError) {
          this.adapterHost.httpAdapter.setHeader(response, 'Retry-After', String(Math.ceil(error.lockTimeout)));
        }
        return throwError(() => error);
      })
    );
  }

  private run(next: CallHandler, session: RequestSession, response: object): Observable<unknown> {
    return next.handle().pipe(concatMap((result) => this.finish(session, response, result)));
  }

  private finish(session: RequestSession, response: object, result: unknown): Observable<unknown> {
    const committing = this.sessions.commit(session);
    if (!committing) return of(result);
    return from(
      committing.then((issued) => {
        if (issued) this.send(response, issued);
        return result;
      })
    );
  }

  private send(response: object, issued: IssuedToken): void {
    const adapter = this.adapterHost.httpAdapter;
    if ('clear' in issued) {
      adapter.appendHeader(response, 'Set-Cookie', serializeCookie(this.options.cookie, '', 0));
    } else {
      adapter.appendHeader(response, 'Set-Cookie', serializeCookie(this.options.cookie, issued.token, issued.maxAge));
      adapter.setHeader(response, this.options.headerName, issued.token);
    }
    // A response that sets or clears a session token must never be served to someone else from a cache.
    adapter.setHeader(response, 'Cache-Control', 'no-store');
  }
}
