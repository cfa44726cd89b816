/** What a handler asked for through its parameter decorators; read by the interceptor before it runs. */
export interface SessionUsage {
  session: boolean;
  jwt: boolean;
  flash: boolean;
  lock: boolean;
  readonly: boolean;
}

const USAGE = Symbol('ezsession:usage');

export function recordUsage(handler: object, usage: Partial<SessionUsage>): void {
  const current: SessionUsage = getUsage(handler) ?? { session: false, jwt: false, flash: false, lock: false, readonly: false };
  const merged = { ...current };
  for (const [key, value] of Object.entries(usage) as Array<[keyof SessionUsage, boolean]>) merged[key] ||= value;
  Reflect.defineMetadata(USAGE, merged, handler);
}

export function getUsage(handler: object): SessionUsage | undefined {
  return Reflect.getMetadata(USAGE, handler) as SessionUsage | undefined;
}
