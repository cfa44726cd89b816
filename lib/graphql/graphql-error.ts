import { reportOf, type SessionErrorCode } from '../ez-session.errors.js';
import type { ResponsePatch } from '../http/response-patch.js';

/** What a GraphQL client finds in `errors[].extensions` when EzSession refused or failed an operation. */
export interface EzSessionGraphQLExtensions {
  /** `UNAUTHENTICATED` (EzSessionGuard refused), a `SessionErrorCode`, or `INTERNAL_SERVER_ERROR`. */
  code: SessionErrorCode | 'UNAUTHENTICATED' | 'INTERNAL_SERVER_ERROR';
  /** Seconds to wait before retrying, for a lock timeout (also sent as a Retry-After header when the response can be reached). */
  retryAfter?: number;
  [name: string]: unknown;
}

/**
 * An EzSession error as a resolver error. graphql-js copies a thrown error's `extensions` into the
 * GraphQL error, so every driver sends `extensions.code`; it is no HttpException, so Apollo's
 * driver does not rename the code after the HTTP status. The REST-shaped error is its `cause`.
 */
export class EzSessionGraphQLError extends Error {
  constructor(
    message: string,
    readonly extensions: EzSessionGraphQLExtensions,
    options?: { cause?: unknown }
  ) {
    super(message, options);
    this.name = 'EzSessionGraphQLError';
  }
}

/** The GraphQL form of an error EzSession raised in a resolver or guard; other errors pass as they are. */
export function graphqlErrorOf(error: unknown): unknown {
  const report = reportOf(error);
  if (!report) return error;
  const { message, ...extensions } = report;
  return new EzSessionGraphQLError(message, extensions, { cause: error });
}

/**
 * A commit that failed after the resolvers ran: the operation's answer is replaced by a GraphQL
 * error answer (HTTP 200, as GraphQL answers an operation whose resolvers failed; `data: null`
 * because nothing the operation did to the session holds). No token goes out with it.
 */
export function graphqlErrorPatch(error: unknown): ResponsePatch {
  const known = graphqlErrorOf(error);
  const graphqlError =
    known instanceof EzSessionGraphQLError ? known : new EzSessionGraphQLError('Internal server error', { code: 'INTERNAL_SERVER_ERROR' });
  const body = JSON.stringify({ errors: [{ message: graphqlError.message, extensions: graphqlError.extensions }], data: null });
  const headers: Array<[string, string]> = [
    ['content-type', 'application/json; charset=utf-8'],
    ['cache-control', 'no-store']
  ];
  if (graphqlError.extensions.retryAfter !== undefined) headers.push(['retry-after', String(graphqlError.extensions.retryAfter)]);
  return { kind: 'error', status: 200, body, headers };
}
