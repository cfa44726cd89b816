import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionDataError } from '../ez-session.errors.js';
import { assertJsonSafe, decodeDocument, emptyDocument, encodeDocument, isEmptyDocument, serializedValue, type SessionDocument } from './session-document.js';

const MiB = 1024 * 1024;

/** Asserts that `action` throws a SessionDataError with exactly `message` (and `status`, 422 unless given). */
function refused(action: () => unknown, message: string, status = 422): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof SessionDataError, `expected a SessionDataError, got ${String(error)}`);
    assert.equal(error.message, message);
    assert.equal(error.getStatus(), status);
    assert.deepEqual(error.getResponse(), { statusCode: status, error: 'SessionDataError', code: status === 413 ? 'SESSION_TOO_LARGE' : 'SESSION_DATA_INVALID', message });
    return true;
  });
}

/** `levels` objects nested under the key `a`: nest(2) is { a: { a: {} } }. */
function nest(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
}

describe('session document', () => {
  describe('encodeDocument and decodeDocument', () => {
    it('give back the data and flash that went in', () => {
      const document: SessionDocument = {
        data: { user: { id: 7, name: 'Ada', roles: ['admin'], active: true, manager: null }, count: -1.5 },
        flash: { notice: { id: 'a1b2c3d4', value: { text: 'Saved' } } }
      };
      const encoded = encodeDocument(document, MiB);
      assert.deepEqual(decodeDocument(encoded.data, encoded.flash), document);
    });

    it('escape everything outside printable ASCII as \\uXXXX, and give it back exactly', () => {
      const text = 'José, 日本語, 😀, \u007f, \u0080, tab\tand\nnewline';
      const encoded = encodeDocument({ data: { text }, flash: { note: { id: 'x', value: 'Ünïcödé' } } }, MiB);
      assert.match(encoded.data, /^[\x20-\x7e]*$/);
      assert.match(encoded.flash, /^[\x20-\x7e]*$/);
      assert.equal(encoded.data, '{"text":"Jos\\u00e9, \\u65e5\\u672c\\u8a9e, \\ud83d\\ude00, \\u007f, \\u0080, tab\\tand\\nnewline"}');
      assert.deepEqual(decodeDocument(encoded.data, encoded.flash), { data: { text }, flash: { note: { id: 'x', value: 'Ünïcödé' } } });
    });

    it('count bytes as stored: the escaped data and flash together', () => {
      const encoded = encodeDocument({ data: { name: 'é' }, flash: {} }, MiB);
      assert.equal(encoded.data, '{"name":"\\u00e9"}');
      assert.equal(encoded.flash, '{}');
      assert.equal(encoded.bytes, encoded.data.length + 2);
      assert.equal(encoded.bytes, Buffer.byteLength(encoded.data + encoded.flash, 'utf8'));
    });

    it('read a missing or empty flash column as no flash', () => {
      assert.deepEqual(decodeDocument('{"a":1}', null), { data: { a: 1 }, flash: {} });
      assert.deepEqual(decodeDocument('{"a":1}', undefined), { data: { a: 1 }, flash: {} });
      assert.deepEqual(decodeDocument('{"a":1}', ''), { data: { a: 1 }, flash: {} });
    });

    it('refuse to decode stored text that is not a JSON object', () => {
      for (const text of ['[]', 'null', '7', '"text"']) {
        assert.throws(() => decodeDocument(text, null), { name: 'SyntaxError', message: 'stored session data is not a JSON object' });
      }
      assert.throws(() => decodeDocument('{"a":1}', '[1]'), { name: 'SyntaxError', message: 'stored session data is not a JSON object' });
      assert.throws(() => decodeDocument('{not json', null), SyntaxError);
    });
  });

  describe('size limit', () => {
    const document = (length: number): SessionDocument => ({ data: { v: 'x'.repeat(length) }, flash: {} });
    // {"v":"…"} is 8 bytes around the value, the empty flash {} 2 more.

    it('accepts a document of exactly maxSessionBytes', () => {
      assert.equal(encodeDocument(document(246), 256).bytes, 256);
    });

    it('refuses a document one byte over with 413, saying its size and the limit', () => {
      refused(() => encodeDocument(document(247), 256), 'The session would be 257 bytes as JSON, over maxSessionBytes (256); nothing was written.', 413);
    });

    it('counts a non-ASCII character as its six escaped bytes', () => {
      refused(() => encodeDocument({ data: { v: 'é'.repeat(42) }, flash: {} }, 256), 'The session would be 262 bytes as JSON, over maxSessionBytes (256); nothing was written.', 413);
    });

    it('counts the flash against the same limit', () => {
      refused(
        () => encodeDocument({ data: {}, flash: { big: { id: 'x', value: 'x'.repeat(300) } } }, 256),
        'The session would be 331 bytes as JSON, over maxSessionBytes (256); nothing was written.',
        413
      );
    });
  });

  describe('assertJsonSafe', () => {
    it('accepts what JSON gives back exactly', () => {
      const shared = { id: 1 };
      const values: unknown[] = ['', 'text', 0, -2.5, Number.MAX_SAFE_INTEGER, true, false, null, [], [1, 'a', null, [{}]], { a: { b: [] } }, Object.create(null), { first: shared, second: shared }];
      for (const value of values) assert.doesNotThrow(() => assertJsonSafe(value, 'session'), `refused ${JSON.stringify(value)}`);
    });

    it('accepts nesting of exactly 64 levels', () => {
      assert.doesNotThrow(() => assertJsonSafe(nest(64), 'session'));
    });

    it('refuses nesting deeper than 64 levels, naming where it gets too deep', () => {
      refused(() => assertJsonSafe(nest(65), 'session'), `Cannot store session${'.a'.repeat(64)}: nested deeper than 64 levels. Nothing was written.`);
    });

    it('refuses numbers JSON would store as null', () => {
      refused(() => assertJsonSafe({ n: Number.NaN }, 'session'), 'Cannot store session.n: NaN is not a finite number (JSON would store null). Nothing was written.');
      refused(() => assertJsonSafe([Infinity], 'session'), 'Cannot store session[0]: Infinity is not a finite number (JSON would store null). Nothing was written.');
      refused(() => assertJsonSafe(-Infinity, 'jwt'), 'Cannot store jwt: -Infinity is not a finite number (JSON would store null). Nothing was written.');
    });

    it('refuses a BigInt, with a hint', () => {
      refused(() => assertJsonSafe({ id: 10n }, 'session'), 'Cannot store session.id: BigInt values cannot be stored (JSON has no BigInt); store value.toString(). Nothing was written.');
    });

    it('refuses functions and symbols', () => {
      refused(() => assertJsonSafe({ f: () => 1 }, 'session'), 'Cannot store session.f: functions cannot be stored. Nothing was written.');
      refused(() => assertJsonSafe({ s: Symbol('s') }, 'session'), 'Cannot store session.s: symbols cannot be stored. Nothing was written.');
    });

    it('refuses undefined inside an object or an array', () => {
      refused(() => assertJsonSafe({ user: { name: undefined } }, 'session'), 'Cannot store session.user.name: undefined cannot be stored (JSON drops it); delete the key instead. Nothing was written.');
      refused(() => assertJsonSafe({ list: [1, undefined] }, 'session'), 'Cannot store session.list[1]: undefined cannot be stored (JSON drops it); delete the key instead. Nothing was written.');
    });

    it('refuses a hole in an array', () => {
      refused(() => assertJsonSafe({ list: [1, , 3] }, 'session'), 'Cannot store session.list[1]: undefined cannot be stored (JSON drops it); delete the key instead. Nothing was written.');
    });

    it('refuses a circular reference, naming where it closes', () => {
      const user: Record<string, unknown> = { name: 'Ada' };
      user.self = { user };
      refused(() => assertJsonSafe({ user }, 'session'), 'Cannot store session.user.self.user: circular reference. Nothing was written.');
    });

    it('refuses a Date, suggesting toISOString', () => {
      refused(() => assertJsonSafe({ at: new Date(0) }, 'session'), 'Cannot store session.at: a Date is not plain JSON data; store date.toISOString(). Nothing was written.');
    });

    it('refuses a Map, a Set and class instances, naming their kind', () => {
      class Cart {
        items = [];
      }
      refused(() => assertJsonSafe({ m: new Map() }, 'session'), 'Cannot store session.m: a Map is not plain JSON data. Nothing was written.');
      refused(() => assertJsonSafe({ s: new Set() }, 'session'), 'Cannot store session.s: a Set is not plain JSON data. Nothing was written.');
      refused(() => assertJsonSafe({ cart: new Cart() }, 'session'), 'Cannot store session.cart: a Cart is not plain JSON data. Nothing was written.');
    });

    for (const key of ['__proto__', 'constructor', 'prototype']) {
      it(`refuses the key "${key}" at any depth`, () => {
        const value = JSON.parse(`{"user":{"${key}":{"admin":true}}}`);
        refused(() => assertJsonSafe(value, 'session'), `Cannot store session.user.${key}: the key "${key}" is refused (prototype pollution). Nothing was written.`);
      });
    }

    it('is what encodeDocument checks first: data under "session", flash values under "flash.<key>"', () => {
      refused(() => encodeDocument({ data: { at: new Date(0) }, flash: {} }, MiB), 'Cannot store session.at: a Date is not plain JSON data; store date.toISOString(). Nothing was written.');
      refused(
        () => encodeDocument({ data: {}, flash: { notice: { id: 'x', value: { n: Number.NaN } } } }, MiB),
        'Cannot store flash.notice.n: NaN is not a finite number (JSON would store null). Nothing was written.'
      );
    });
  });

  describe('helpers', () => {
    it('emptyDocument gives a fresh empty document each time, which isEmptyDocument recognises', () => {
      const first = emptyDocument();
      assert.deepEqual(first, { data: {}, flash: {} });
      assert.notEqual(emptyDocument().data, first.data);
      assert.equal(isEmptyDocument(first), true);
      assert.equal(isEmptyDocument({ data: { a: 1 }, flash: {} }), false);
      assert.equal(isEmptyDocument({ data: {}, flash: { n: { id: 'x', value: 1 } } }), false);
    });

    it('serializedValue serializes as the store would, and undefined (a deleted key) as undefined', () => {
      assert.equal(serializedValue({ b: [1, 'é'] }), '{"b":[1,"é"]}');
      assert.equal(serializedValue(null), 'null');
      assert.equal(serializedValue(undefined), undefined);
    });
  });
});
