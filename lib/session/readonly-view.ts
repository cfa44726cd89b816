/**
 * A view of `target` that reads through (nested objects included) and refuses every change with
 * the error `refuse` builds for the top-level key concerned. Reads see later changes made through
 * the tracked object, because both share the one loaded document.
 */
export function readonlyView<T extends object>(target: T, refuse: (key: string) => Error): Readonly<T> {
  return wrap(target, undefined, refuse, new Map()) as Readonly<T>;
}

/** `views` holds one view per (value, top-level key): a value under two keys names the key it was reached through. */
function wrap(target: object, root: string | undefined, refuse: (key: string) => Error, views: Map<string, WeakMap<object, object>>): object {
  const keyOf = (property: string | symbol) => root ?? String(property);
  return new Proxy(target, {
    get(t, property, receiver) {
      const value = Reflect.get(t, property, receiver);
      // JSON.stringify reads the plain data (serializing changes nothing), not a view per nested value.
      if (property === 'toJSON' && value === undefined) return () => t;
      if (typeof property === 'symbol' || value === null || typeof value !== 'object') return value;
      const key = root ?? property;
      let known = views.get(key);
      if (!known) views.set(key, (known = new WeakMap()));
      let view = known.get(value);
      if (!view) known.set(value, (view = wrap(value, key, refuse, views)));
      return view;
    },
    set(_, property) {
      throw refuse(keyOf(property));
    },
    deleteProperty(_, property) {
      throw refuse(keyOf(property));
    },
    defineProperty(_, property) {
      throw refuse(keyOf(property));
    },
    setPrototypeOf() {
      return false;
    },
    // Object.freeze / seal would otherwise make the shared document itself non-extensible.
    preventExtensions() {
      return false;
    }
  });
}
