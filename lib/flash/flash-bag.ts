import { ReadonlySessionError } from '../ez-session.errors.js';
import type { FlashEntry } from '../session/session-document.js';
import { assertJsonSafe, assertStorableKey } from '../session/session-document.js';

/**
 * Values for the next request: what is set now is readable now and by the next request that reads
 * it, then gone. `get` and `all` consume what earlier requests left; `peek` reads without consuming;
 * `keep` puts consumed values back for one more request.
 */
export class FlashBag {
  private readonly outgoing = new Map<string, unknown>();
  private readonly consumed = new Map<string, string>();
  private readonly kept = new Set<string>();
  private keepAll = false;

  constructor(
    private incoming: Readonly<Record<string, FlashEntry>>,
    /** Who declared the session read-only: values are read without being consumed, and set() is refused. */
    private readonly readonlyReader?: string,
    private readonly onChange: () => void = () => undefined
  ) {}

  /** The session these values came from was destroyed: only values set from now on remain. */
  forgetIncoming(): void {
    this.incoming = {};
    this.consumed.clear();
  }

  /** A regeneration kept only these keys: the others, left earlier or set in this request, are gone. */
  retain(keys: ReadonlySet<string>): void {
    // Deleting from a Map while iterating it is well-defined: no copy of the keys needed.
    for (const key of this.outgoing.keys()) if (!keys.has(key)) this.outgoing.delete(key);
    for (const key of this.consumed.keys()) if (!keys.has(key)) this.consumed.delete(key);
  }

  set(key: string, value: unknown): void {
    if (this.readonlyReader !== undefined) throw new ReadonlySessionError(`flash.${key}`, this.readonlyReader);
    // The store writes `flash[key]`: "__proto__" would set the record's prototype and the value would be lost.
    assertStorableKey(key, 'flash');
    assertJsonSafe(value, `flash.${key}`);
    this.outgoing.set(key, value);
    this.onChange();
  }

  get<T = unknown>(key: string): T | undefined {
    if (this.outgoing.has(key)) return this.outgoing.get(key) as T;
    const entry = this.left(key);
    if (!entry) return undefined;
    if (this.readonlyReader === undefined) {
      this.consumed.set(key, entry.id);
      this.onChange();
    }
    return entry.value as T;
  }

  peek<T = unknown>(key: string): T | undefined {
    if (this.outgoing.has(key)) return this.outgoing.get(key) as T;
    return this.left(key)?.value as T | undefined;
  }

  has(key: string): boolean {
    return this.outgoing.has(key) || Object.hasOwn(this.incoming, key);
  }

  /** What an earlier request left under `key`: its own entries only, not what every object inherits (`toString`, `constructor`). */
  private left(key: string): FlashEntry | undefined {
    return Object.hasOwn(this.incoming, key) ? this.incoming[key] : undefined;
  }

  /** Keeps one consumed value (or all) for the next request too. */
  keep(key?: string): void {
    if (key === undefined) this.keepAll = true;
    else this.kept.add(key);
  }

  /** Every value readable now; consumes what earlier requests left. */
  all(): Record<string, unknown> {
    const values: Record<string, unknown> = {};
    for (const key of Object.keys(this.incoming)) values[key] = this.get(key);
    for (const [key, value] of this.outgoing) values[key] = value;
    return values;
  }

  /** The request failed: nothing it set is stored and nothing it read is consumed. */
  discard(): void {
    this.outgoing.clear();
    this.consumed.clear();
  }

  /** Whether this request set, consumed or kept anything. */
  get touched(): boolean {
    return this.outgoing.size > 0 || this.consumed.size > 0;
  }

  /** What this request changes in the stored flash: values to add, and consumed values (by id) to drop. */
  changes(): { set: ReadonlyMap<string, unknown>; consumed: ReadonlyMap<string, string> } {
    const consumed = new Map(this.keepAll ? [] : [...this.consumed].filter(([key]) => !this.kept.has(key)));
    return { set: this.outgoing, consumed };
  }
}
