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
  private roots: Map<string, { traps: Traps; proxies: WeakMap<object, object> }> | undefined;
  private nestedTargets: WeakMap<object, object> | undefined;
  private toJSON: ((this: object) => unknown) | undefined;

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
    return (this.rootProxy ??= this.wrap(this.target, new Traps(this, undefined)) as T);
  }

  private wrap(target: object, traps: Traps): object {
    return new Proxy(target, traps);
  }

  /** The proxy of a nested value, one per (value, top-level key), with one set of traps per top-level key. */
  nested(value: object, root: string): object {
    this.roots ??= new Map();
    let known = this.roots.get(root);
    if (!known) this.roots.set(root, (known = { traps: new Traps(this, root), proxies: new WeakMap() }));
    let proxy = known.proxies.get(value);
    if (!proxy) {
      known.proxies.set(value, (proxy = this.wrap(value, known.traps)));
      (this.nestedTargets ??= new WeakMap()).set(proxy, value);
    }
    return proxy;
  }

  touch(root: string | undefined, property: string | symbol): void {
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

  /**
   * The `toJSON` a tracked object shows JSON.stringify (unless its data has one): the plain object
   * behind it. Serializing changes nothing, so it need not go through a proxy per nested value
   * (answering with a 10-item cart would otherwise make eleven, and trap every property read).
   */
  get serializer(): (this: object) => unknown {
    const tracker = this;
    return (this.toJSON ??= function (this: object) {
      return tracker.unwrap(this);
    });
  }

  unwrap(value: unknown): unknown {
    if (value === null || typeof value !== 'object') return value;
    if (value === this.rootProxy) return this.target;
    return this.nestedTargets?.get(value) ?? value;
  }
}

/**
 * The traps of every proxy under one top-level key (or of the root object): methods on one object
 * rather than closures made for each proxy, since a read of a nested value makes a proxy.
 */
class Traps implements ProxyHandler<object> {
  constructor(
    private readonly tracker: ChangeTracker,
    private readonly root: string | undefined
  ) {}

  get(target: object, property: string | symbol, receiver: unknown): unknown {
    const value = Reflect.get(target, property, receiver);
    if (property === 'toJSON' && value === undefined) return this.tracker.serializer;
    if (typeof property === 'symbol' || value === null || typeof value !== 'object') return value;
    return this.tracker.nested(value, this.root ?? property);
  }

  set(target: object, property: string | symbol, value: unknown): boolean {
    this.tracker.touch(this.root, property);
    return Reflect.set(target, property, this.tracker.unwrap(value));
  }

  deleteProperty(target: object, property: string | symbol): boolean {
    this.tracker.touch(this.root, property);
    return Reflect.deleteProperty(target, property);
  }

  defineProperty(target: object, property: string | symbol, descriptor: PropertyDescriptor): boolean {
    this.tracker.touch(this.root, property);
    return Reflect.defineProperty(target, property, descriptor);
  }

  setPrototypeOf(): boolean {
    return false;
  }
}
