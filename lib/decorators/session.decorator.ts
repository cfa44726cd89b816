import { sessionParameter } from './session-parameter.js';

export interface SessionParamOptions {
  /**
   * Take the session's lock before the handler runs and hold it until the write is done, so
   * read-modify-write handlers (counters, stock) never interleave. Default `false`: writes still
   * lock, but only around the write, merging the keys this request changed.
   */
  lock?: boolean;
  /**
   * No lock, no data write: any change to the data throws (the expiry may still be extended). A
   * `@Flash()` beside it still consumes and sets flash values, which writes the flash only.
   */
  readonly?: boolean;
}

/**
 * The session data: a plain-looking object whose changes (at any depth) are tracked and stored
 * when the app answers. Loaded on first ask, at most once per request.
 */
export function Session(options: SessionParamOptions = {}): ParameterDecorator {
  const readonly = options.readonly === true;
  const lock = options.lock === true && !readonly;
  return sessionParameter({ session: true, lock, readonly }, (sessions, session, usage) => {
    if (usage.readonly) return sessions.whenLoaded(session, () => session.readonlyData(usage.reader));
    if (usage.lock) return sessions.whenLocked(session, () => session.trackedData);
    return sessions.whenLoaded(session, () => session.trackedData);
  });
}
