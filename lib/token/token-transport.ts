import type { ResolvedOptions } from '../options/resolved-options.js';

type HeaderBag = Record<string, string | string[] | undefined>;

/** How a token came: the carrier decides what the cross-origin check and the token header rule apply to. */
export type TokenCarrier = 'bearer' | 'cookie';

export interface PresentedToken {
  token: string;
  carrier: TokenCarrier;
}

/**
 * The token a request carries: `Authorization: Bearer <jwt>` first, else the session cookie. A
 * Bearer value `isOurs` turns down (a gateway's or another service's token, an API key) is left
 * to its owner, and the cookie is read as if it were not there.
 */
export function readToken(headers: HeaderBag, cookieName: string, isOurs: (token: string) => boolean = () => true): PresentedToken | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ') {
    const token = authorization.slice(7).trim();
    if (token && isOurs(token)) return { token, carrier: 'bearer' };
  }
  const cookie = readCookie(headers.cookie, cookieName);
  return cookie ? { token: cookie, carrier: 'cookie' } : undefined;
}

/** The first cookie of that name (several may arrive, e.g. one tossed from a sibling subdomain). */
export function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  if (!header) return undefined;
  const text = Array.isArray(header) ? header.join('; ') : header;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value.startsWith('"') && value.endsWith('"') && value.length >= 2 ? value.slice(1, -1) : value;
    }
  }
  return undefined;
}

/** `secure`: whether this response's cookie is Secure (`cookie.secure` decided for the request when it is `'auto'`). */
export function serializeCookie(cookie: ResolvedOptions['cookie'], value: string, maxAgeSeconds: number, secure = cookie.secure === true): string {
  let text = `${cookie.name}=${value}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; Path=${cookie.path}`;
  if (cookie.domain) text += `; Domain=${cookie.domain}`;
  text += '; HttpOnly';
  if (secure) text += '; Secure';
  text += `; SameSite=${cookie.sameSite[0].toUpperCase()}${cookie.sameSite.slice(1)}`;
  return text;
}
