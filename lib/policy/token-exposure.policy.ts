import { headerOf, type HttpRequestLike } from '../http/http-request.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import type { TokenCarrier } from '../token/token-transport.js';

/**
 * Whether a response may carry the token in a header (`tokenHeader`). A header is readable by the
 * page's scripts, HttpOnly cookie or not: in `'auto'` it goes to clients that hold the token
 * themselves (they sent it as Bearer) and to clients that show no sign of a browser. Browsers send
 * `Sec-Fetch-Site` on every request to an HTTPS (or localhost) origin, and `Origin` on every
 * unsafe request; Node's `fetch` sends only `Sec-Fetch-Mode`, curl and mobile clients neither.
 */
export function exposesToken(mode: ResolvedOptions['tokenHeader'], request: HttpRequestLike, carrier: TokenCarrier | undefined): boolean {
  if (mode !== 'auto') return mode === 'always';
  if (carrier === 'bearer') return true;
  return headerOf(request.headers, 'sec-fetch-site') === undefined && headerOf(request.headers, 'origin') === undefined;
}
