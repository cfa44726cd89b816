import type { ExecutionContext } from '@nestjs/common';

/** What EzSession reads of a request: its headers (token, binding) and the IP the framework resolved. */
export interface HttpRequestLike {
  headers: Record<string, string | string[] | undefined>;
  ip?: string;
  method?: string;
  /** `'https'` or `'http'`, as the framework resolves it (Express `trust proxy`, Fastify `trustProxy`); Node's own request has none. */
  protocol?: string;
  /** Host and port, as the framework resolves it (Express 5 `req.host`, Fastify `request.host`). */
  host?: string;
  /** Node's request: whether the connection itself is TLS. */
  socket?: { encrypted?: boolean };
  /** Fastify's request wraps Node's: that one is the same object everywhere the request goes. */
  raw?: object;
  /** Express links the request to its response. */
  res?: object;
}

/** Whether the request arrived over HTTPS, as the framework resolves it (a proxy's X-Forwarded-Proto counts only where the app trusts the proxy). */
export function arrivedOverHttps(request: HttpRequestLike): boolean {
  if (typeof request.protocol === 'string') return request.protocol === 'https';
  return request.socket?.encrypted === true;
}

/** The request's own origin (scheme, host, port), as the framework resolves them; `undefined` without a usable Host. */
export function ownOriginOf(request: HttpRequestLike): string | undefined {
  const host = typeof request.host === 'string' && request.host !== '' ? request.host : request.headers.host;
  if (typeof host !== 'string' || host === '') return undefined;
  try {
    // The URL parser writes the origin as browsers write Origin: lower case, no default port.
    return new URL(`${arrivedOverHttps(request) ? 'https' : 'http'}://${host}`).origin;
  } catch {
    return undefined;
  }
}

/** One request header as a single string (a repeated header comes joined, so it never matches a lone expected value). */
export function headerOf(headers: HttpRequestLike['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The object that identifies one request wherever it is handed over (Fastify's request or Node's own). */
export function requestKey(request: HttpRequestLike): object {
  return request.raw ?? request;
}

export function isExecutionContext(value: unknown): value is ExecutionContext {
  return typeof (value as ExecutionContext | undefined)?.switchToHttp === 'function' && typeof (value as ExecutionContext).getType === 'function';
}

/** An HTTP request a session is read from, the response when known, and whether a GraphQL operation came in it. */
export interface RequestExchange {
  request: HttpRequestLike;
  response: object | undefined;
  graphql: boolean;
}

/**
 * The HTTP request (and the response, when the framework gives it) behind an ExecutionContext or a
 * request object; `undefined` for a context that is not an HTTP request.
 */
export function httpExchangeOf(target: ExecutionContext | object): RequestExchange | undefined {
  if (isExecutionContext(target)) {
    if (target.getType() !== 'http') return undefined;
    // The arguments of an HTTP context are [request, response, next]; switchToHttp() would give the
    // same two, at the price of three closures attached to the context on every call.
    return { request: target.getArgByIndex<HttpRequestLike>(0), response: target.getArgByIndex<object>(1), graphql: false };
  }
  const request = target as HttpRequestLike;
  if (typeof request?.headers !== 'object' || request.headers === null) return undefined;
  return { request, response: request.res, graphql: false };
}
