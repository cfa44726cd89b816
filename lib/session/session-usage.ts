/** What a handler asked for through its EzSession parameter decorators. */
export interface SessionUsage {
  session: boolean;
  flash: boolean;
  lock: boolean;
  readonly: boolean;
  /** `Controller.method`, for messages that must say where a problem is. */
  handler: string;
}

const USAGE = Symbol('ezsession:usage');

/**
 * Merges what one decorator needs into its handler's usage and returns that usage: one object per
 * handler, shared by all of its decorators, so `readonly` on `@Session()` also governs `@Flash()`.
 */
export function recordUsage(target: object, key: string | symbol, usage: Partial<SessionUsage>): SessionUsage {
  const handler = (target as Record<string | symbol, object>)[key];
  let recorded = Reflect.getMetadata(USAGE, handler) as SessionUsage | undefined;
  if (!recorded) {
    recorded = { session: false, flash: false, lock: false, readonly: false, handler: `${target.constructor.name}.${String(key)}` };
    Reflect.defineMetadata(USAGE, recorded, handler);
  }
  for (const [name, value] of Object.entries(usage) as Array<[keyof SessionUsage, boolean]>) {
    if (value === true) (recorded as unknown as Record<string, boolean>)[name] = true;
  }
  return recorded;
}
