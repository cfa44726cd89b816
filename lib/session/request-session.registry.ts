import type { RequestSession } from './request-session.js';

// Keyed by the request object the interceptor and the parameter decorators both receive.
const sessions = new WeakMap<object, RequestSession>();

export function bindRequestSession(request: object, session: RequestSession): void {
  sessions.set(request, session);
}

export function requestSessionOf(request: object): RequestSession {
  const session = sessions.get(request);
  if (!session) {
    throw new Error('EzSession: no session for this request. Import EzSessionModule.forRoot() in the root module; its interceptor opens the session (HTTP handlers only).');
  }
  return session;
}

export function findRequestSession(request: object): RequestSession | undefined {
  return sessions.get(request);
}
