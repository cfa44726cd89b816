import { sessionParameter } from './session-parameter.js';

/** The session's `FlashBag`: values set now are readable now and by the next request that reads them. */
export function Flash(): ParameterDecorator {
  return sessionParameter({ flash: true }, (sessions, session, usage) => {
    if (usage.lock) return sessions.whenLocked(session, () => session.flash());
    return sessions.whenLoaded(session, () => session.flash(usage.readonly ? usage.reader : undefined));
  });
}
