import type { ExecutionContext } from '@nestjs/common';

/** What EzSession reads of a request: its headers (token, binding) and the IP the framework resolved. */
export interface HttpRequestLike {
  headers: Record<string, string | string[] | undefined>;
  ip?: string;
  /** Fastify's request wraps Node's: that one is the same object everywhere the request goes. */
  raw?: object;
  /** Express links the request to its response. */
  res?: object;
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
