import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { catchError, concatMap, finalize, from, switchMap, throwError, type Observable } from 'rxjs';
import { EZ_SESSION_OPTIONS } from './ez-session.constants.js';
import { SessionLockTimeoutError } from './ez-session.errors.js';
import type { ResolvedOptions } from './options/resolved-options.js';
import { bindRequestSession } from './session/request-session.registry.js';
import { SessionManager, type IssuedToken } from './session/session.manager.js';
import { getUsage } from './session/session-usage.js';
import { serializeCookie } from './token/token-transport.js';

/**
 * Registered globally. Handlers without an EzSession decorator pass straight through: no token
 * parsing, no I/O. For the others it opens the session before the handler and, once the handler
 * has returned, commits what changed and sends the new token with the response.
 */
@Injectable()
export class EzSessionInterceptor implements NestInterceptor {
  constructor(
    private readonly sessions: SessionManager,
    private readonly adapterHost: HttpAdapterHost,
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const usage = context.getType() === 'http' ? getUsage(context.getHandler()) : undefined;
    if (!usage) return next.handle();

    const http = context.switchToHttp();
    const request = http.getRequest<{ headers: Record<string, string | string[] | undefined> }>();
    const response = http.getResponse<object>();

    return from(this.sessions.open(request.headers, usage)).pipe(
      switchMap((session) => {
        bindRequestSession(request, session);
        return next.handle().pipe(
          concatMap(async (result) => {
            const issued = await this.sessions.commit(session);
            if (issued) this.sendToken(response, issued);
            return result;
          }),
          finalize(() => void this.sessions.release(session))
        );
      }),
      catchError((error: unknown) => {
        if (error instanceof SessionLockTimeoutError) {
          this.adapterHost.httpAdapter.setHeader(response, 'Retry-After', String(Math.ceil(error.lockTimeout)));
        }
        return throwError(() => error);
      })
    );
  }

  private sendToken(response: object, { token, maxAge }: IssuedToken): void {
    const adapter = this.adapterHost.httpAdapter;
    adapter.appendHeader(response, 'Set-Cookie', serializeCookie(this.options.cookie, token, maxAge));
    adapter.setHeader(response, this.options.headerName, token);
    // A response carrying a session token must never be served to someone else from a cache.
    adapter.setHeader(response, 'Cache-Control', 'no-store');
  }
}
