import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { Observable, type Subscription } from 'rxjs';
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

    // One hand-written Observable instead of a chain of operators: this runs on every session
    // request, and each rxjs operator adds its own observable and subscriber (measured in the bench).
    return new Observable((subscriber) => {
      let handler: Subscription | undefined;
      let committing = false;
      const fail = (error: unknown) => {
        if (error instanceof SessionLockTimeoutError) {
          this.adapterHost.httpAdapter.setHeader(response, 'Retry-After', String(Math.ceil(error.lockTimeout)));
        }
        subscriber.error(error);
      };
      const runHandler = (session: RequestSession) => {
        handler = next.handle().subscribe({
          next: (result) => {
            if (session.committed) return subscriber.next(result);
            const commit = this.sessions.commit(session);
            if (!commit) return subscriber.next(result);
            committing = true;
            commit.then((issued) => {
              if (issued) this.send(response, issued);
              subscriber.next(result);
              subscriber.complete();
            }, fail);
          },
          error: fail,
          // A commit in progress completes the response itself, once the token is out.
          complete: () => {
            if (!committing) subscriber.complete();
          }
        });
      };
      const opened = this.sessions.open(request, usage);
      if (opened instanceof Promise) opened.then(runHandler, fail);
      else runHandler(opened);
      return () => {
        handler?.unsubscribe();
        // The handler failed or the client went away before the write: drop a lock still held.
        const session = findRequestSession(request);
        if (session?.lock) void this.sessions.release(session);
      };
    });
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
