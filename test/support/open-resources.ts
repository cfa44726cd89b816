/**
 * What a spec opened (apps, clients, servers), closed in its `after` hook whatever its tests did:
 * newest first, and every one of them even when closing another fails, so that a test that threw
 * midway leaves nothing retrying a stopped server or keeping the spec process alive.
 */
export class OpenResources {
  private readonly closers: Array<() => unknown> = [];

  /** Returns `resource`, to be closed by `close(resource)` in `closeAll()`. */
  add<T>(resource: T, close: (resource: T) => unknown): T {
    this.closers.push(() => close(resource));
    return resource;
  }

  async closeAll(): Promise<void> {
    const failures: unknown[] = [];
    for (const close of this.closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} resources failed to close`);
  }
}
