import type { ExecutionContext } from '@nestjs/common';
import { SessionCsrfError } from '../ez-session.errors.js';
import { headerOf, ownOriginOf, type HttpRequestLike } from '../http/http-request.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import type { TokenCarrier } from '../token/token-transport.js';

/** Set by `@SkipCsrf()` on a handler or controller. */
export const SKIP_CSRF_METADATA = 'ez-session:skip-csrf';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether headers show the request was sent from another origin, in the order of Go 1.25's
 * CrossOriginProtection: a trusted `Origin` passes; `Sec-Fetch-Site` decides when present (every
 * browser sends it over HTTPS since 2023; `same-site` is refused on purpose: a sibling subdomain
 * is same-site and Lax cookies travel with its requests); without it, an `Origin` that is not
 * `ownOrigin` is refused; with neither, the client is no browser and cannot be made to send a cookie.
 */
export function fromAnotherOrigin(headers: HttpRequestLike['headers'], ownOrigin: () => string | undefined, trustedOrigins: ReadonlySet<string>): boolean {
  const origin = headerOf(headers, 'origin');
  if (origin !== undefined && trustedOrigins.has(origin)) return false;
  const site = headerOf(headers, 'sec-fetch-site');
  if (site !== undefined) return site !== 'same-origin' && site !== 'none';
  return origin !== undefined && origin !== ownOrigin();
}

/**
 * The refusal for a request that may not use (or start) a cookie session, or `undefined`: an
 * unsafe method, no Bearer token of this app, from another origin, on a route not marked
 * `@SkipCsrf()`. Headers only, no I/O. A route's mark is read through the ExecutionContext; a
 * session reached first through the bare request object cannot see it, so the check applies.
 */
export function crossOriginRefusal(
  request: HttpRequestLike,
  carrier: TokenCarrier | undefined,
  options: Pick<ResolvedOptions, 'csrf'>,
  context: ExecutionContext | undefined
): SessionCsrfError | undefined {
  const { csrf } = options;
  // A script on another origin cannot set Authorization without the app's CORS consent.
  if (csrf === false || carrier === 'bearer') return undefined;
  const method = request.method;
  if (typeof method !== 'string' || SAFE_METHODS.has(method.toUpperCase())) return undefined;
  if (!fromAnotherOrigin(request.headers, () => ownOriginOf(request), csrf.trustedOrigins)) return undefined;
  if (context && skipsCsrf(context)) return undefined;
  return new SessionCsrfError();
}

function skipsCsrf(context: ExecutionContext): boolean {
  const handler = context.getHandler?.();
  const controller = context.getClass?.();
  return (handler !== undefined && Reflect.getMetadata(SKIP_CSRF_METADATA, handler) === true) || (controller !== undefined && Reflect.getMetadata(SKIP_CSRF_METADATA, controller) === true);
}
