import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { RequestSession } from '../session/request-session.js';
import { requestSessionsFor, type RequestSessions } from '../session/request-sessions.js';
import { requestExchangeOf } from '../session/request-target.js';
import { overSocket, recordUsage, type SessionUsage } from '../session/session-usage.js';
import { socketOf, socketRequestOf } from '../ws/socket-handshake.js';

export type SessionParameterFactory = (sessions: RequestSessions, session: RequestSession, usage: SessionUsage) => unknown;

/**
 * Builds an EzSession parameter decorator. Its value is computed when Nest resolves the handler's
 * arguments, from the request's session (opened on first ask), so a handler without EzSession
 * decorators meets no EzSession code at all. Route handlers and resolvers get the request's
 * session; gateway handlers the socket's, read-only.
 */
export function sessionParameter(usage: Partial<SessionUsage>, factory: SessionParameterFactory): ParameterDecorator {
  const parameter = createParamDecorator((recorded: SessionUsage, context: ExecutionContext) => {
    const exchange = requestExchangeOf(context);
    if (exchange) {
      const sessions = requestSessionsFor(exchange.request);
      return factory(sessions, sessions.sessionOf(exchange.request, exchange.response, exchange.graphql, context), recorded);
    }
    const socket = socketOf(context);
    if (!socket) throw new Error(`EzSession decorators need an HTTP request, a GraphQL operation or a socket; ${recorded.handler} runs in a "${context.getType()}" context`);
    if (recorded.lock) throw new Error(`@Session({ lock: true }) in ${recorded.handler}: a socket's session is read-only (nothing can be sent back over it); use @Session()`);
    const sessions = requestSessionsFor(socketRequestOf(socket));
    return factory(sessions, sessions.sockets.sessionOf(socket), overSocket(recorded));
  });
  return (target, key, index) => {
    if (key === undefined) throw new Error('EzSession decorators go on handler parameters, not constructor parameters');
    const recorded = recordUsage(target, key, usage);
    passPipesUntouched(target, key, index);
    parameter(recorded)(target, key, index);
  };
}

/**
 * Pipes decide from a parameter's declared type whether to rebuild its value: a global
 * `ValidationPipe({ transform: true, validateCustomDecorators: true })` would turn the FlashBag or
 * a class-typed session into a fresh instance, detached from the request. Declaring the parameter
 * as a plain Object makes every pipe pass EzSession's values through as they are.
 */
function passPipesUntouched(target: object, key: string | symbol, index: number): void {
  const types = Reflect.getMetadata('design:paramtypes', target, key) as unknown[] | undefined;
  if (!types || types[index] === Object) return;
  const copy = [...types];
  copy[index] = Object;
  Reflect.defineMetadata('design:paramtypes', copy, target, key);
}
