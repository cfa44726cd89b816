import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { requestSessionOf } from '../session/request-session.registry.js';
import { sessionParameter } from './session-parameter.js';

const jwtParam = createParamDecorator((_: unknown, context: ExecutionContext) => requestSessionOf(context.switchToHttp().getRequest()).jwtProxy);

/**
 * The token's custom claims: read with no storage I/O; changing them sends a fresh token. Keep them
 * small and non-secret (anyone holding the token can read them). Reserved names (sid, stored, iat,
 * exp, ...) are not shown and cannot be set.
 */
export function Jwt(): ParameterDecorator {
  return sessionParameter({ jwt: true }, jwtParam());
}
