import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readonlyView } from './readonly-view.js';

type Data = Record<string, any>;

class Refused extends Error {
  constructor(readonly key: string) {
    super(`refused: ${key}`);
  }
}

const view = (target: Data): Data => readonlyView(target, (key) => new Refused(key)) as Data;

/** Asserts that `change` throws the error the view builds for `key`. */
function refusedFor(key: string, change: () => unknown): void {
  assert.throws(change, (error: unknown) => error instanceof Refused && error.key === key);
}

describe('readonlyView', () => {
  describe('reads', () => {
    it('reads values through, nested objects and arrays included', () => {
      const data = view({ user: { name: 'Ada', roles: ['admin', 'dev'] }, count: 2, none: null });
      assert.equal(data.user.name, 'Ada');
      assert.equal(data.user.roles[1], 'dev');
      assert.equal(data.count, 2);
      assert.equal(data.none, null);
      assert.equal(data.missing, undefined);
    });

    it('keeps a stored key named toJSON as data, and serializes it', () => {
      const data = view({ doc: { toJSON: 'kept' } });
      assert.equal(data.doc.toJSON, 'kept');
      assert.equal(JSON.stringify(data), '{"doc":{"toJSON":"kept"}}');
    });

    it('enumerates and serializes like the object it views', () => {
      const target = { user: { name: 'Ada', roles: ['admin'] }, count: 2 };
      const data = view(target);
      assert.deepEqual(Object.keys(data), ['user', 'count']);
      assert.equal(JSON.stringify(data), JSON.stringify(target));
      assert.deepEqual(data.user.roles.map((role: string) => role.toUpperCase()), ['ADMIN']);
      assert.deepEqual({ ...data.user }, { name: 'Ada', roles: ['admin'] });
    });

    it('gives the same view of a nested object each time it is read', () => {
      const data = view({ user: { prefs: {} } });
      assert.equal(data.user, data.user);
      assert.equal(data.user.prefs, data.user.prefs);
    });

    it('reads symbol-keyed members as they are, not wrapped', () => {
      const list = [1, 2];
      const data = view({ list });
      assert.equal(data.list[Symbol.unscopables], Array.prototype[Symbol.unscopables]);
      assert.deepEqual([...data.list], [1, 2]);
    });

    it('sees changes made to the viewed object afterwards', () => {
      const target: Data = { user: { name: 'Ada' } };
      const data = view(target);
      assert.equal(data.user.name, 'Ada');
      target.user.name = 'Grace';
      target.count = 1;
      assert.equal(data.user.name, 'Grace');
      assert.equal(data.count, 1);
    });
  });

  describe('changes', () => {
    it('refuses setting a top-level key, naming it, and leaves the object as it was', () => {
      const target = { count: 1 };
      const data = view(target);
      refusedFor('count', () => (data.count = 2));
      refusedFor('added', () => (data.added = true));
      assert.deepEqual(target, { count: 1 });
    });

    it('refuses deleting a top-level key, naming it', () => {
      const target = { count: 1 };
      const data = view(target);
      refusedFor('count', () => delete data.count);
      assert.deepEqual(target, { count: 1 });
    });

    it('refuses a nested change naming the top-level key above it, however deep', () => {
      const target = { user: { prefs: { theme: 'dark' } } };
      const data = view(target);
      refusedFor('user', () => (data.user.prefs.theme = 'light'));
      refusedFor('user', () => delete data.user.prefs.theme);
      refusedFor('user', () => (data.user.prefs.added = 1));
      assert.deepEqual(target, { user: { prefs: { theme: 'dark' } } });
    });

    it('refuses array methods that change the array', () => {
      const target = { cart: { items: ['b', 'a'] } };
      const data = view(target);
      refusedFor('cart', () => data.cart.items.push('c'));
      refusedFor('cart', () => data.cart.items.sort());
      assert.deepEqual(target.cart.items, ['b', 'a']);
    });

    it('refuses Object.defineProperty and Object.assign, naming the key', () => {
      const target = { user: {} as Data };
      const data = view(target);
      refusedFor('user', () => Object.defineProperty(data.user, 'name', { value: 'Ada' }));
      refusedFor('count', () => Object.assign(data, { count: 1 }));
      assert.deepEqual(target, { user: {} });
    });

    it('names the key a change was attempted through when one object sits under two keys', () => {
      const shared = { theme: 'dark' };
      const data = view({ current: shared, saved: shared });
      assert.equal(data.current.theme, 'dark');
      refusedFor('saved', () => (data.saved.theme = 'light'));
      refusedFor('current', () => (data.current.theme = 'light'));
    });

    it('refuses Object.freeze, Object.seal and Object.preventExtensions, leaving the object extensible', () => {
      const target = { user: { name: 'Ada' } };
      const data = view(target);
      assert.throws(() => Object.preventExtensions(data));
      assert.throws(() => Object.freeze(data.user));
      assert.throws(() => Object.seal(data.user));
      assert.equal(Object.isExtensible(target), true);
      assert.equal(Object.isExtensible(target.user), true);
    });

    it('refuses changing the prototype', () => {
      const target = { user: {} };
      const data = view(target);
      assert.throws(() => Object.setPrototypeOf(data, { admin: true }), TypeError);
      assert.throws(() => Object.setPrototypeOf(data.user, { admin: true }), TypeError);
      assert.equal(Object.getPrototypeOf(target), Object.prototype);
      assert.equal(Object.getPrototypeOf(target.user), Object.prototype);
    });
  });
});
