import type { ExecutionContext } from '@nestjs/common';
import type { HttpRequestLike, RequestExchange } from '../http/http-request.js';

/**
 * What EzSession reads of the GraphQL context (the third resolver argument): the HTTP request the
 * operation came in. Apollo puts it at `req` (Express's request, which links to its response;
 * Fastify's, which the onSend hook needs alone), Mercurius at `req` and `reply.request`; other
 * drivers at `request`. No import of @nestjs/graphql: the shape is all that is needed.
 */
interface GraphQLContextLike {
  req?: HttpRequestLike;
  request?: HttpRequestLike;
  res?: object;
  reply?: { request?: HttpRequestLike };
}

/** The line that gives a GraphQL context the request and response, for a driver that leaves them out. */
export const GRAPHQL_CONTEXT_LINE = 'context: ({ req, res }) => ({ req, res })';

/** The HTTP request (and response, when the context has one) behind a resolver's ExecutionContext. */
export function graphqlExchangeOf(context: ExecutionContext): RequestExchange {
  const exchange = graphqlContextExchangeOf(context.getArgByIndex<object | undefined>(2));
  if (exchange) return exchange;
  const where = `${context.getClass()?.name}.${context.getHandler()?.name}`;
  throw new Error(
    `EzSession: the GraphQL context of ${where} has no HTTP request (looked for req, request and reply.request). ` +
      `Subscriptions over a WebSocket have none: sessions are read from queries and mutations. ` +
      `With a driver or context function that leaves the request out, add to GraphQLModule.forRoot: ${GRAPHQL_CONTEXT_LINE}`
  );
}

/**
 * The HTTP request behind a GraphQL context object (what `@Context()` gives a resolver), or
 * `undefined` when `value` is none. Replies and responses are no contexts, though they link to
 * their request: they can send.
 */
export function graphqlContextExchangeOf(value: object | undefined): RequestExchange | undefined {
  const graphql = value as (GraphQLContextLike & { send?: unknown; writeHead?: unknown }) | undefined;
  if (typeof graphql !== 'object' || graphql === null || typeof graphql.send === 'function' || typeof graphql.writeHead === 'function') return undefined;
  const request = graphql.req ?? graphql.request ?? graphql.reply?.request;
  if (typeof request?.headers !== 'object' || request.headers === null) return undefined;
  return { request, response: graphql.res ?? graphql.reply, graphql: true };
}

/**
 * Whether a GraphQL answer reports errors. GraphQL answers 200 when a resolver fails, so the
 * HTTP status cannot tell a failed operation: the body does. `body` is what the app was about to
 * send (a string or bytes); a streamed answer (incremental delivery) cannot be read and counts
 * as a success.
 */
export function answeredWithErrors(body: unknown): boolean {
  const text = typeof body === 'string' ? body : body instanceof Uint8Array ? Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8') : undefined;
  // Most answers have no errors: a substring test spares parsing them.
  if (text === undefined || !text.includes('"errors"')) return false;
  try {
    const parsed = JSON.parse(text) as unknown;
    // A batch (Apollo's allowBatchedHttpRequests) answers with an array of results.
    return (Array.isArray(parsed) ? parsed : [parsed]).some((result) => Array.isArray((result as { errors?: unknown } | null)?.errors) && (result as { errors: unknown[] }).errors.length > 0);
  } catch {
    return false;
  }
}
