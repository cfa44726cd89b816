/** What a handler asked for through its parameter decorators; read by the interceptor before it runs. */
export interface SessionUsage {
  session: boolean;
  jwt: boolean;
  flash: boolean;
  lock: boolean;
  readonly: boolean;
}

const USAGE = Symbol('ezsession:usage');

/** Records what a handler's decorator needs; returns `true` for the handler's first EzSession decorator. */
export function recordUsage(handler: object, usage: Partial<SessionUsage>): boolean {
  const recorded = getUsage(handler);
  const merged: SessionUsage = { ...(recorded ?? { session: false, jwt: false, flash: false, lock: false, readonly: false }) };
  for (const [key, value] of Object.entries(usage) as Array<[keyof SessionUsage, boolean]>) merged[key] ||= value;
  Reflect.defineMetadata(USAGE, merged, handler);
  return recorded === undefined;
}

export function getUsage(handler: object): SessionUsage | undefined {
  return Reflect.getMetadata(USAGE, handler) as SessionUsage | undefined;
}
