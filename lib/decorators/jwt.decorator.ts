import { sessionParameter } from './session-parameter.js';

/**
 * The token's custom claims: read with no storage I/O; changing them sends a fresh token. Keep them
 * small and non-secret (anyone holding the token can read them). Reserved names (sid, stored, iat,
 * exp, ...) are not shown and cannot be set. In a gateway they are read-only.
 */
export function Jwt(): ParameterDecorator {
  return sessionParameter({}, (sessions, session, usage) => (sessions.sockets.owns(session) ? session.readonlyClaims(usage.reader) : session.trackedClaims));
}
