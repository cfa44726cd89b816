import { HttpException, HttpStatus } from '@nestjs/common';
import { SessionLockTimeoutError } from '../ez-session.errors.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import type { IssuedToken } from '../session/session.manager.js';
import { serializeCookie } from '../token/token-transport.js';

/** What a commit changes in the response it held: headers to add, or the whole answer replaced by an error. */
export type ResponsePatch =
  | { kind: 'headers'; headers: Array<[name: string, value: string]> }
  | { kind: 'error'; status: number; body: string; headers: Array<[name: string, value: string]> };

export const NO_PATCH: ResponsePatch = { kind: 'headers', headers: [] };

/** How one response delivers a token: whether its cookie is Secure, and whether the token header goes too. */
export interface TokenDelivery {
  secure: boolean;
  header: boolean;
}

/** The headers that carry a new token (or clear the cookie); `Set-Cookie` is appended, never replacing the app's cookies. */
export function tokenHeaders(
  options: Pick<ResolvedOptions, 'cookie' | 'headerName'>,
  issued: IssuedToken | undefined,
  delivery: TokenDelivery = { secure: options.cookie.secure === true, header: true }
): ResponsePatch {
  if (!issued) return NO_PATCH;
  // A response that sets or clears a session token must never be served to someone else from a cache.
  if ('clear' in issued) return { kind: 'headers', headers: [['set-cookie', serializeCookie(options.cookie, '', 0, delivery.secure)], ['cache-control', 'no-store']] };
  const headers: Array<[string, string]> = [['set-cookie', serializeCookie(options.cookie, issued.token, issued.maxAge, delivery.secure)]];
  if (delivery.header) headers.push([options.headerName, issued.token]);
  headers.push(['cache-control', 'no-store']);
  return { kind: 'headers', headers };
}

/**
 * A commit that failed after the handler answered: the answer is replaced with the error's status
 * and the JSON body Nest would give it. Errors EzSession does not know of become a plain 500
 * (the caller logs them).
 */
export function errorPatch(error: unknown): ResponsePatch {
  const exception = error instanceof HttpException ? error : new HttpException({ statusCode: 500, message: 'Internal server error' }, HttpStatus.INTERNAL_SERVER_ERROR);
  const response = exception.getResponse();
  const body = JSON.stringify(typeof response === 'string' ? { statusCode: exception.getStatus(), message: response } : response);
  const headers: Array<[string, string]> = [
    ['content-type', 'application/json; charset=utf-8'],
    ['cache-control', 'no-store']
  ];
  if (error instanceof SessionLockTimeoutError) headers.push(['retry-after', String(Math.ceil(error.lockTimeout))]);
  return { kind: 'error', status: exception.getStatus(), body, headers };
}

/** Headers of the held answer that describe its body or send the client elsewhere: they must not survive an error patch. */
export const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-disposition', 'content-range', 'etag', 'last-modified', 'location', 'transfer-encoding'];
