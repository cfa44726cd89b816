import type { ExecutionContext } from '@nestjs/common';
import { graphqlContextExchangeOf, graphqlExchangeOf } from '../graphql/graphql-request.js';
import { httpExchangeOf, isExecutionContext, type RequestExchange } from '../http/http-request.js';

/**
 * The HTTP request a session belongs to, from whatever EzSession is handed: the ExecutionContext of
 * a route handler or of a GraphQL resolver (one operation, one HTTP request), a request, or a
 * GraphQL context object. `undefined` for anything else (a gateway's context, a socket).
 */
export function requestExchangeOf(target: ExecutionContext | object): RequestExchange | undefined {
  if (isExecutionContext(target)) return target.getType<string>() === 'graphql' ? graphqlExchangeOf(target) : httpExchangeOf(target);
  return httpExchangeOf(target) ?? graphqlContextExchangeOf(target);
}
