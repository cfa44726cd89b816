import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReadonlySessionError, SessionDataError } from '../ez-session.errors.js';
import type { FlashEntry } from '../session/session-document.js';
import { FlashBag } from './flash-bag.js';

/** What earlier requests left: `{ key: value }`, each entry with the id `id-<key>`. */
function left(values: Record<string, unknown>): Record<string, FlashEntry> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, { id: `id-${key}`, value }]));
}

/** A bag over `incoming`, counting the calls of its onChange. */
function bag(incoming: Record<string, unknown> = {}, readonlyReader?: string): { flash: FlashBag; changes: () => number } {
  let calls = 0;
  const flash = new FlashBag(left(incoming), readonlyReader, () => calls++);
  return { flash, changes: () => calls };
}

const consumed = (flash: FlashBag) => Object.fromEntries(flash.changes().consumed);
const set = (flash: FlashBag) => Object.fromEntries(flash.changes().set);

describe('FlashBag', () => {
  describe('set', () => {
    it('stores a value for the next request', () => {
      const { flash } = bag();
      flash.set('notice', { text: 'Saved' });
      assert.deepEqual(set(flash), { notice: { text: 'Saved' } });
    });

    it('makes the value readable in this request too, without consuming anything', () => {
      const { flash } = bag();
      flash.set('notice', 'Saved');
      assert.equal(flash.get('notice'), 'Saved');
      assert.equal(flash.peek('notice'), 'Saved');
      assert.equal(flash.has('notice'), true);
      assert.deepEqual(consumed(flash), {});
    });

    it('replaces what was set under the key before', () => {
      const { flash } = bag();
      flash.set('notice', 'first');
      flash.set('notice', 'second');
      assert.deepEqual(set(flash), { notice: 'second' });
    });

    it('wins over a value an earlier request left under the same key, which stays unconsumed', () => {
      const { flash } = bag({ notice: 'old' });
      flash.set('notice', 'new');
      assert.equal(flash.get('notice'), 'new');
      assert.deepEqual(flash.all(), { notice: 'new' });
      assert.deepEqual(consumed(flash), {});
    });

    it('refuses a value JSON cannot give back, naming flash.<key>, and stores nothing', () => {
      const { flash, changes } = bag();
      assert.throws(() => flash.set('when', new Date(0)), {
        name: 'SessionDataError',
        message: 'Cannot store flash.when: a Date is not plain JSON data; store date.toISOString(). Nothing was written.'
      });
      assert.throws(() => flash.set('n', { deep: [Number.NaN] }), (error: unknown) => error instanceof SessionDataError && error.message.startsWith('Cannot store flash.n.deep[0]: NaN'));
      assert.equal(flash.has('when'), false);
      assert.deepEqual(set(flash), {});
      assert.equal(changes(), 0);
    });
  });

  describe('get', () => {
    it('gives a value an earlier request left and consumes it by its id', () => {
      const { flash } = bag({ notice: 'Welcome', other: 1 });
      assert.equal(flash.get('notice'), 'Welcome');
      assert.deepEqual(consumed(flash), { notice: 'id-notice' });
    });

    it('gives the same value again within the request', () => {
      const { flash } = bag({ notice: 'Welcome' });
      flash.get('notice');
      assert.equal(flash.get('notice'), 'Welcome');
      assert.equal(flash.has('notice'), true);
    });

    it('gives undefined for a key nobody set, consuming nothing', () => {
      const { flash, changes } = bag({ notice: 'Welcome' });
      assert.equal(flash.get('missing'), undefined);
      assert.deepEqual(consumed(flash), {});
      assert.equal(flash.touched, false);
      assert.equal(changes(), 0);
    });
  });

  describe('keys named like members of every object', () => {
    for (const key of ['toString', 'constructor', 'hasOwnProperty', '__proto__']) {
      it(`gives undefined for "${key}" when nobody set it, consuming nothing`, () => {
        const { flash, changes } = bag({ notice: 'Welcome' });
        assert.equal(flash.get(key), undefined);
        assert.equal(flash.peek(key), undefined);
        assert.equal(flash.has(key), false);
        assert.deepEqual(consumed(flash), {});
        assert.equal(flash.touched, false);
        assert.equal(changes(), 0);
      });
    }

    it('gives and consumes a value an earlier request left under "constructor"', () => {
      const { flash } = bag({ constructor: 'left' });
      assert.equal(flash.get('constructor'), 'left');
      assert.deepEqual(consumed(flash), { constructor: 'id-constructor' });
    });

    for (const key of ['__proto__', 'constructor', 'prototype']) {
      it(`refuses setting "${key}" with a SessionDataError naming flash.${key}, and stores nothing`, () => {
        const { flash, changes } = bag();
        assert.throws(
          () => flash.set(key, { admin: true }),
          (error: unknown) =>
            error instanceof SessionDataError &&
            error.getStatus() === 422 &&
            error.message === `Cannot store flash.${key}: the key "${key}" is refused (prototype pollution). Nothing was written.`
        );
        assert.deepEqual(set(flash), {});
        assert.equal(changes(), 0);
      });
    }
  });

  describe('peek', () => {
    it('gives a value an earlier request left without consuming it', () => {
      const { flash, changes } = bag({ notice: 'Welcome' });
      assert.equal(flash.peek('notice'), 'Welcome');
      assert.deepEqual(consumed(flash), {});
      assert.equal(flash.touched, false);
      assert.equal(changes(), 0);
    });

    it('gives undefined for a key nobody set', () => {
      const { flash } = bag();
      assert.equal(flash.peek('missing'), undefined);
    });
  });

  describe('has', () => {
    it('says whether a value was set now or left by an earlier request, without consuming', () => {
      const { flash } = bag({ left: 1 });
      flash.set('now', 2);
      assert.equal(flash.has('left'), true);
      assert.equal(flash.has('now'), true);
      assert.equal(flash.has('missing'), false);
      assert.deepEqual(consumed(flash), {});
    });
  });

  describe('keep', () => {
    it('with a key, keeps that consumed value for the next request and consumes the others', () => {
      const { flash } = bag({ a: 1, b: 2 });
      flash.get('a');
      flash.get('b');
      flash.keep('a');
      assert.deepEqual(consumed(flash), { b: 'id-b' });
    });

    it('with a key, also applies to a value read after the call', () => {
      const { flash } = bag({ a: 1 });
      flash.keep('a');
      flash.get('a');
      assert.deepEqual(consumed(flash), {});
    });

    it('without a key, keeps everything read in this request', () => {
      const { flash } = bag({ a: 1, b: 2 });
      flash.keep();
      flash.all();
      assert.deepEqual(consumed(flash), {});
    });

    it('does not hold back what is set in this request', () => {
      const { flash } = bag();
      flash.set('a', 1);
      flash.keep();
      assert.deepEqual(set(flash), { a: 1 });
    });
  });

  describe('all', () => {
    it('gives every value readable now, set ones over left ones, and consumes the left ones', () => {
      const { flash } = bag({ a: 'left', b: 'left' });
      flash.set('b', 'set');
      flash.set('c', 'set');
      assert.deepEqual(flash.all(), { a: 'left', b: 'set', c: 'set' });
      assert.deepEqual(consumed(flash), { a: 'id-a' });
    });

    it('gives an empty object when there is nothing', () => {
      assert.deepEqual(bag().flash.all(), {});
    });
  });

  describe('read-only reader', () => {
    it('refuses set with a ReadonlySessionError naming flash.<key> and the reader', () => {
      const { flash, changes } = bag({}, 'NewsController.list');
      assert.throws(
        () => flash.set('notice', 'x'),
        (error: unknown) =>
          error instanceof ReadonlySessionError &&
          error.key === 'flash.notice' &&
          error.reader === 'NewsController.list' &&
          error.message === 'Cannot change session key "flash.notice": NewsController.list is read-only.'
      );
      assert.equal(flash.has('notice'), false);
      assert.equal(changes(), 0);
    });

    it('reads with get and all without consuming', () => {
      const { flash, changes } = bag({ a: 1, b: 2 }, 'NewsController.list');
      assert.equal(flash.get('a'), 1);
      assert.deepEqual(flash.all(), { a: 1, b: 2 });
      assert.deepEqual(consumed(flash), {});
      assert.equal(flash.touched, false);
      assert.equal(changes(), 0);
    });
  });

  describe('discard', () => {
    it('drops what the request set and consumed, so nothing changes', () => {
      const { flash } = bag({ a: 1 });
      flash.get('a');
      flash.set('b', 2);
      flash.discard();
      assert.deepEqual(set(flash), {});
      assert.deepEqual(consumed(flash), {});
      assert.equal(flash.touched, false);
    });

    it('leaves the values earlier requests left readable', () => {
      const { flash } = bag({ a: 1 });
      flash.get('a');
      flash.discard();
      assert.equal(flash.peek('a'), 1);
    });
  });

  describe('forgetIncoming', () => {
    it('makes what earlier requests left unreadable and unconsumed', () => {
      const { flash } = bag({ a: 1 });
      flash.get('a');
      flash.forgetIncoming();
      assert.equal(flash.get('a'), undefined);
      assert.equal(flash.has('a'), false);
      assert.deepEqual(flash.all(), {});
      assert.deepEqual(consumed(flash), {});
    });

    it('keeps what this request set', () => {
      const { flash } = bag({ a: 1 });
      flash.set('b', 2);
      flash.forgetIncoming();
      assert.equal(flash.get('b'), 2);
      assert.deepEqual(set(flash), { b: 2 });
    });
  });

  describe('onChange and touched', () => {
    it('is not told of anything while the request only looks', () => {
      const { flash, changes } = bag({ a: 1 });
      flash.peek('a');
      flash.has('a');
      flash.get('missing');
      flash.keep();
      assert.equal(changes(), 0);
      assert.equal(flash.touched, false);
    });

    it('is told at the first set', () => {
      const { flash, changes } = bag();
      flash.set('a', 1);
      assert.ok(changes() >= 1);
      assert.equal(flash.touched, true);
    });

    it('is told at the first read that consumes', () => {
      const { flash, changes } = bag({ a: 1 });
      flash.get('a');
      assert.ok(changes() >= 1);
      assert.equal(flash.touched, true);
    });

    it('is told when all() consumes', () => {
      const { flash, changes } = bag({ a: 1 });
      flash.all();
      assert.ok(changes() >= 1);
    });
  });
});
