import { SessionDataError } from '../ez-session.errors.js';

const NOTHING_CHANGED: ReadonlySet<string> = new Set();

/** Keys that would reach an object's prototype rather than become data. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Wraps a plain record in a Proxy that records which top-level keys a handler touched: a set or
 * delete at any depth marks the top-level key it sits under. Writes can then apply only those keys
 * onto the row as it is under the lock, so parallel requests that change different keys both land.
 */
export class ChangeTracker<T extends Record<string, unknown> = Record<string, unknown>> {
  private changedKeys: Set<string> | undefined;
  // Built on first use: most requests read a claim or two and never reach a nested object.
  private rootProxy: T | undefined;
  private proxiesByRoot: Map<string, WeakMap<object, object>> | undefined;
  private nestedTargets: WeakMap<object, object> | undefined;

  constructor(
    readonly target: T,
    private readonly guard: (key: string) => void = () => undefined
  ) {}

  /** Top-level keys a set or delete touched (at any depth). */
  get changed(): ReadonlySet<string> {
    return this.changedKeys ?? NOTHING_CHANGED;
  }

  /** Forgets what was touched: the changes are not to be written. */
  clearChanges(): void {
    this.changedKeys = undefined;
  }

  get proxy(): T {
    return (this.rootProxy ??= this.wrap(this.target, undefined) as T);
  }

  private wrap(target: object, root: string | undefined): object {
    return new Proxy(target, {
      get: (t, property, receiver) => {
        const value = Reflect.get(t, property, receiver);
        if (typeof property === 'symbol' || value === null || typeof value !== 'object') return value;
        return this.nested(value, root ?? property);
      },
      set: (t, property, value) => {
        this.touch(root, property);
        return Reflect.set(t, property, this.unwrap(value));
      },
      deleteProperty: (t, property) => {
        this.touch(root, property);
        return Reflect.deleteProperty(t, property);
      },
      defineProperty: (t, property, descriptor) => {
        this.touch(root, property);
        return Reflect.defineProperty(t, property, descriptor);
      },
      setPrototypeOf: () => false
    });
  }

  private nested(value: object, root: string): object {
    this.proxiesByRoot ??= new Map();
    let proxies = this.proxiesByRoot.get(root);
    if (!proxies) this.proxiesByRoot.set(root, (proxies = new WeakMap()));
    let proxy = proxies.get(value);
    if (!proxy) {
      proxies.set(value, (proxy = this.wrap(value, root)));
      (this.nestedTargets ??= new WeakMap()).set(proxy, value);
    }
    return proxy;
  }

  private touch(root: string | undefined, property: string | symbol): void {
    if (root === undefined && typeof property === 'symbol') {
      throw new TypeError('Symbol keys cannot be stored in a session');
    }
    // Refused at the assignment: `target.__proto__ = x` would change the prototype, not store a key,
    // and the handler would see the inherited values for the rest of the request.
    if (typeof property === 'string' && FORBIDDEN_KEYS.has(property)) {
      throw new SessionDataError(`Cannot store the key "${property}"${root === undefined ? '' : ` under "${root}"`}: it is refused (prototype pollution). Nothing was written.`);
    }
    const key = root ?? (property as string);
    this.guard(key);
    (this.changedKeys ??= new Set()).add(key);
  }

  private unwrap(value: unknown): unknown {
    if (value === null || typeof value !== 'object') return value;
    if (value === this.rootProxy) return this.target;
    return this.nestedTargets?.get(value) ?? value;
  }
}
