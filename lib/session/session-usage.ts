/** What a handler asked for through its EzSession parameter decorators. */
export interface SessionUsage {
  session: boolean;
  flash: boolean;
  lock: boolean;
  readonly: boolean;
  /** `Controller.method`, for messages that must say where a problem is. */
  handler: string;
  /** Who made the session read-only, named when a change is refused. */
  reader: string;
}

const USAGE = Symbol('ezsession:usage');

/**
 * Merges what one decorator needs into its handler's usage and returns that usage: one object per
 * handler, shared by all of its decorators (`@Flash()` takes its `lock` and its reader's name from it).
 */
export function recordUsage(target: object, key: string | symbol, usage: Partial<SessionUsage>): SessionUsage {
  const method = (target as Record<string | symbol, object>)[key];
  let recorded = Reflect.getMetadata(USAGE, method) as SessionUsage | undefined;
  if (!recorded) {
    const handler = `${target.constructor.name}.${String(key)}`;
    recorded = { session: false, flash: false, lock: false, readonly: false, handler, reader: `@Session({ readonly: true }) in ${handler}` };
    Reflect.defineMetadata(USAGE, recorded, method);
  }
  for (const [name, value] of Object.entries(usage) as Array<[keyof SessionUsage, boolean]>) {
    if (value === true) (recorded as unknown as Record<string, boolean>)[name] = true;
  }
  return recorded;
}

const socketUsages = new WeakMap<SessionUsage, SessionUsage>();

/** A gateway handler's usage: the same parameters, read-only, since nothing can be written back over a socket. */
export function overSocket(usage: SessionUsage): SessionUsage {
  let variant = socketUsages.get(usage);
  if (!variant) {
    variant = { ...usage, readonly: true, reader: `the session of a socket in ${usage.handler}` };
    socketUsages.set(usage, variant);
  }
  return variant;
}
