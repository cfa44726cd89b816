/**
 * A view of `target` that reads through (nested objects included) and refuses every change with
 * the error `refuse` builds for the top-level key concerned. Reads see later changes made through
 * the tracked object, because both share the one loaded document.
 */
export function readonlyView<T extends object>(target: T, refuse: (key: string) => Error): Readonly<T> {
  return wrap(target, undefined, refuse, new WeakMap()) as Readonly<T>;
}

function wrap(target: object, root: string | undefined, refuse: (key: string) => Error, views: WeakMap<object, object>): object {
  const keyOf = (property: string | symbol) => root ?? String(property);
  return new Proxy(target, {
    get(t, property, receiver) {
      const value = Reflect.get(t, property, receiver);
      if (typeof property === 'symbol' || value === null || typeof value !== 'object') return value;
      let view = views.get(value);
      if (!view) views.set(value, (view = wrap(value, root ?? property, refuse, views)));
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
    }
  });
}
