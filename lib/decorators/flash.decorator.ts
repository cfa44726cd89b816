import { sessionParameter } from './session-parameter.js';

/**
 * The session's `FlashBag`: values set now are readable now and by the next request that reads them.
 * Beside `@Session({ readonly: true })` it works the same (consumes what it reads, stores what it
 * sets), with the data left read-only; in a gateway it is read-only.
 */
export function Flash(): ParameterDecorator {
  return sessionParameter({ flash: true }, (sessions, session, usage) => {
    if (usage.lock) return sessions.whenLocked(session, () => session.flash());
    return sessions.whenLoaded(session, () => session.flash(sessions.sockets.owns(session) ? usage.reader : undefined));
  });
}
