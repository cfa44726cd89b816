/**
 * Per-key mutex with a timeout, in process memory. Alone it is the lock of the embedded SQLite
 * store; in front of MySQL it makes requests of one instance queue here instead of each holding a
 * pooled connection while it waits in GET_LOCK.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Whether someone holds or waits for `key`. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }

  /** Resolves with a release function, or with `undefined` when `timeoutMs` passed first. */
  async acquire(key: string, timeoutMs: number): Promise<(() => void) | undefined> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    const done = () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs)));
    const acquired = await Promise.race([previous.then(() => false), timedOut]);
    clearTimeout(timer);
    if (acquired === true) {
      // Our place in the queue must still pass on once the holder before us finishes.
      previous.then(done, done);
      return undefined;
    }
    return done;
  }
}
