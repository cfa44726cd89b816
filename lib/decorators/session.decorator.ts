import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { requestSessionOf } from '../session/request-session.registry.js';
import { sessionParameter } from './session-parameter.js';

export interface SessionParamOptions {
  /**
   * Take the session's lock before the handler runs and hold it until the write is done, so
   * read-modify-write handlers (counters, stock) never interleave. Default `false`: writes still
   * lock, but only around the write, merging the keys this request changed.
   */
  lock?: boolean;
  /** No lock, no data write: any change throws, and flash values are not consumed (the expiry may still be extended). */
  readonly?: boolean;
}

const sessionParam = createParamDecorator((_: unknown, context: ExecutionContext) => requestSessionOf(context.switchToHttp().getRequest()).sessionProxy);

/**
 * The session data: a plain-looking object whose changes (at any depth) are tracked and stored
 * after the handler returns. Loaded only for handlers that ask for it.
 */
export function Session(options: SessionParamOptions = {}): ParameterDecorator {
  return sessionParameter({ session: true, lock: options.lock === true, readonly: options.readonly === true }, sessionParam());
}
