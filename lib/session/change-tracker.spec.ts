import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { types } from 'node:util';
import { SessionDataError } from '../ez-session.errors.js';
import { ChangeTracker } from './change-tracker.js';

type Data = Record<string, any>;

function track(data: Data = {}, guard?: (key: string) => void): { tracker: ChangeTracker<Data>; session: Data } {
  const tracker = new ChangeTracker<Data>(data, guard);
  return { tracker, session: tracker.proxy };
}

const changed = (tracker: ChangeTracker<Data>) => [...tracker.changed].sort();

describe('ChangeTracker', () => {
  describe('which top-level keys it marks', () => {
    it('marks nothing for reads, at any depth', () => {
      const { tracker, session } = track({ user: { name: 'Ada', roles: ['admin'] }, count: 1 });
      assert.equal(session.user.name, 'Ada');
      assert.equal(session.user.roles[0], 'admin');
      assert.deepEqual(Object.keys(session), ['user', 'count']);
      assert.equal(JSON.stringify(session), '{"user":{"name":"Ada","roles":["admin"]},"count":1}');
      assert.deepEqual(changed(tracker), []);
    });

    it('serializes a nested value from the plain data, without a proxy per element', () => {
      const { tracker, session } = track({ cart: [{ sku: 'a' }, { sku: 'b' }] });
      const cart = session.cart;
      const made: object[] = [];
      const nested = tracker.nested.bind(tracker);
      tracker.nested = (value: object, root: string) => (made.push(value), nested(value, root));
      assert.equal(JSON.stringify({ cart }), '{"cart":[{"sku":"a"},{"sku":"b"}]}');
      assert.equal(JSON.stringify(session), '{"cart":[{"sku":"a"},{"sku":"b"}]}');
      assert.deepEqual(made, []);
      assert.deepEqual(changed(tracker), []);
    });

    it('still marks a change made through a nested value after it was serialized', () => {
      const { tracker, session } = track({ cart: [{ sku: 'a' }] });
      JSON.stringify(session.cart);
      session.cart[0].sku = 'b';
      assert.deepEqual(changed(tracker), ['cart']);
      assert.equal(tracker.target.cart[0].sku, 'b');
    });

    it('keeps a stored key named toJSON as data', () => {
      const { session } = track({ doc: { toJSON: 'kept' } });
      assert.equal(session.doc.toJSON, 'kept');
      assert.equal(JSON.stringify(session), '{"doc":{"toJSON":"kept"}}');
    });

    it('marks a top-level key that is set, and applies the value', () => {
      const { tracker, session } = track({ count: 1 });
      session.count = 2;
      assert.deepEqual(changed(tracker), ['count']);
      assert.equal(tracker.target.count, 2);
    });

    it('marks a top-level key that is deleted, and deletes it', () => {
      const { tracker, session } = track({ count: 1, other: true });
      delete session.count;
      assert.deepEqual(changed(tracker), ['count']);
      assert.deepEqual(tracker.target, { other: true });
    });

    it('marks the top-level key a nested set sits under, however deep', () => {
      const { tracker, session } = track({ user: { prefs: { theme: { name: 'light' } } }, other: {} });
      session.user.prefs.theme.name = 'dark';
      assert.deepEqual(changed(tracker), ['user']);
      assert.equal(tracker.target.user.prefs.theme.name, 'dark');
    });

    it('marks the top-level key a nested delete sits under', () => {
      const { tracker, session } = track({ user: { prefs: { theme: 'dark', lang: 'en' } } });
      delete session.user.prefs.theme;
      assert.deepEqual(changed(tracker), ['user']);
      assert.deepEqual(tracker.target.user, { prefs: { lang: 'en' } });
    });

    it('marks the key of an array changed by its methods', () => {
      const { tracker, session } = track({ cart: { items: ['a'] }, seen: [] });
      session.cart.items.push('b');
      assert.deepEqual(changed(tracker), ['cart']);
      assert.deepEqual(tracker.target.cart.items, ['a', 'b']);
    });

    it('marks the key of a property defined with Object.defineProperty', () => {
      const { tracker, session } = track({ user: {} });
      Object.defineProperty(session.user, 'name', { value: 'Ada', enumerable: true, writable: true, configurable: true });
      Object.defineProperty(session, 'count', { value: 1, enumerable: true, writable: true, configurable: true });
      assert.deepEqual(changed(tracker), ['count', 'user']);
    });

    it('marks each key once, whatever the number of changes', () => {
      const { tracker, session } = track();
      session.a = 1;
      session.a = 2;
      session.b = { c: 1 };
      session.b.c = 2;
      assert.deepEqual(changed(tracker), ['a', 'b']);
    });

    it('gives the same proxy for a nested object each time it is read', () => {
      const { session } = track({ user: { name: 'Ada' } });
      assert.equal(session.user, session.user);
    });
  });

  describe('one nested object under two keys', () => {
    it('marks the key a change was made through, not the key the object was first read under', () => {
      const shared = { theme: 'light' };
      const { tracker, session } = track({ current: shared, saved: shared });
      assert.equal(session.current.theme, 'light');
      session.saved.theme = 'dark';
      assert.deepEqual(changed(tracker), ['saved']);
    });

    it('marks both keys when each is changed through', () => {
      const shared = { theme: 'light' };
      const { tracker, session } = track({ current: shared, saved: shared });
      session.saved.theme = 'dark';
      session.current.lang = 'en';
      assert.deepEqual(changed(tracker), ['current', 'saved']);
    });
  });

  describe('symbol keys', () => {
    it('refuses a symbol key at the top level and marks nothing', () => {
      const { tracker, session } = track();
      const key = Symbol('key');
      assert.throws(() => (session[key as unknown as string] = 1), { name: 'TypeError', message: 'Symbol keys cannot be stored in a session' });
      assert.throws(() => delete session[key as unknown as string], { name: 'TypeError', message: 'Symbol keys cannot be stored in a session' });
      assert.deepEqual(changed(tracker), []);
      assert.deepEqual(Object.getOwnPropertySymbols(tracker.target), []);
    });

    it('reads symbol-keyed members as they are, not wrapped', () => {
      const { session } = track({ list: [1, 2, 3] });
      assert.deepEqual([...session.list], [1, 2, 3]);
      assert.equal(session.list[Symbol.unscopables], Array.prototype[Symbol.unscopables]);
    });
  });

  describe('prototype keys', () => {
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      it(`refuses setting "${key}" at the top level with a SessionDataError naming it, and changes nothing`, () => {
        const { tracker, session } = track();
        assert.throws(
          () => (session[key] = { admin: true }),
          (error: unknown) =>
            error instanceof SessionDataError &&
            error.getStatus() === 422 &&
            error.message === `Cannot store the key "${key}": it is refused (prototype pollution). Nothing was written.`
        );
        assert.deepEqual(changed(tracker), []);
        assert.equal(Object.getPrototypeOf(tracker.target), Object.prototype);
        assert.equal(Object.hasOwn(tracker.target, key), false);
      });
    }

    it('refuses a nested prototype key naming both the key and the top-level key above it', () => {
      const { tracker, session } = track({ user: { prefs: {} } });
      assert.throws(() => (session.user.prefs.__proto__ = { admin: true }), {
        name: 'SessionDataError',
        message: 'Cannot store the key "__proto__" under "user": it is refused (prototype pollution). Nothing was written.'
      });
      assert.equal(Object.getPrototypeOf(tracker.target.user.prefs), Object.prototype);
      assert.equal(tracker.target.user.prefs.admin, undefined);
      assert.deepEqual(changed(tracker), []);
    });

    it('refuses a prototype key given to Object.defineProperty or delete', () => {
      const { session } = track({ user: {} });
      assert.throws(() => Object.defineProperty(session.user, 'constructor', { value: 1 }), SessionDataError);
      assert.throws(() => delete session.user.prototype, SessionDataError);
    });

    it('refuses changing the prototype of the data or of a nested object', () => {
      const { tracker, session } = track({ user: {} });
      assert.throws(() => Object.setPrototypeOf(session, { admin: true }), TypeError);
      assert.throws(() => Object.setPrototypeOf(session.user, { admin: true }), TypeError);
      assert.equal(Object.getPrototypeOf(tracker.target.user), Object.prototype);
    });
  });

  describe('proxies assigned back', () => {
    it('stores the plain object when a nested proxy is assigned under another key', () => {
      const { tracker, session } = track({ current: { theme: 'dark' } });
      session.saved = session.current;
      assert.equal(tracker.target.saved, tracker.target.current);
      assert.equal(types.isProxy(tracker.target.saved), false);
    });

    it('stores the plain object when a nested proxy is assigned deeper down', () => {
      const { tracker, session } = track({ a: { x: 1 }, b: {} });
      session.b.copy = session.a;
      assert.equal(tracker.target.b.copy, tracker.target.a);
      assert.equal(types.isProxy(tracker.target.b.copy), false);
    });

    it('stores the data object itself when the root proxy is assigned into it', () => {
      const { tracker, session } = track();
      session.self = session;
      assert.equal(tracker.target.self, tracker.target);
    });

    it('stores a plain value given from outside as it is', () => {
      const { tracker, session } = track();
      const cart = { items: [] as string[] };
      session.cart = cart;
      cart.items.push('a');
      assert.equal(tracker.target.cart, cart);
      assert.deepEqual(tracker.target.cart.items, ['a']);
    });
  });

  describe('guard', () => {
    it('is asked about each change with the top-level key, before the change applies', () => {
      const asked: Array<[string, unknown]> = [];
      const data: Data = { user: { name: 'Ada' } };
      const { session } = track(data, (key) => asked.push([key, JSON.stringify(data)]));
      session.user.name = 'Grace';
      session.count = 1;
      assert.deepEqual(asked, [
        ['user', '{"user":{"name":"Ada"}}'],
        ['count', '{"user":{"name":"Grace"}}']
      ]);
    });

    it('refusing, leaves the value as it was and the key unmarked', () => {
      const { tracker, session } = track({ role: 'user' }, (key) => {
        if (key === 'role') throw new Error(`"${key}" is reserved`);
      });
      assert.throws(() => (session.role = 'admin'), { message: '"role" is reserved' });
      assert.throws(() => delete session.role, { message: '"role" is reserved' });
      assert.equal(tracker.target.role, 'user');
      assert.deepEqual(changed(tracker), []);
    });
  });

  describe('clearChanges', () => {
    it('forgets the marked keys and keeps the values', () => {
      const { tracker, session } = track({ a: 1 });
      session.a = 2;
      session.b = { c: 1 };
      tracker.clearChanges();
      assert.deepEqual(changed(tracker), []);
      assert.deepEqual(tracker.target, { a: 2, b: { c: 1 } });
    });

    it('lets later changes be marked again, nested ones through proxies read before', () => {
      const { tracker, session } = track({ user: { name: 'Ada' }, other: 1 });
      const user = session.user;
      user.name = 'Grace';
      tracker.clearChanges();
      user.name = 'Linus';
      assert.deepEqual(changed(tracker), ['user']);
    });
  });
});
