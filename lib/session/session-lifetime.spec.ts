import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cacheTtl, expiryFrom, revocationEnd } from './session-lifetime.js';

// A fixed clock: every reading below is NOW (ms) or a stated distance from it.
const NOW = 1_800_000_000_000;
const SECOND = 1000;
const HOUR = 3600 * SECOND;
const LIFETIMES = { idleTimeout: 7200, absoluteTimeout: 86400, cacheTtl: 3600, clockSkew: 30 };

describe('session lifetime', () => {
  describe('expiryFrom: when a row written at a given moment expires', () => {
    it('is idleTimeout after the activity', () => {
      assert.equal(expiryFrom(LIFETIMES, NOW, NOW - HOUR), NOW + 2 * HOUR);
    });

    it('never passes absoluteTimeout after the session was created', () => {
      const createdAt = NOW - 23 * HOUR;
      assert.equal(expiryFrom(LIFETIMES, NOW, createdAt), createdAt + 24 * HOUR);
      assert.equal(expiryFrom(LIFETIMES, NOW, createdAt), NOW + HOUR);
    });

    it('is already past once the absolute timeout has passed, so a write then leaves no live row', () => {
      assert.equal(expiryFrom(LIFETIMES, NOW, NOW - 25 * HOUR), NOW - HOUR);
    });
  });

  describe('cacheTtl: how long a cache entry may live', () => {
    it('is the cacheTtl option while the session has longer to live', () => {
      assert.equal(cacheTtl(LIFETIMES, NOW + 2 * HOUR, NOW), HOUR);
    });

    it('ends a second before the session does when the session has less left than cacheTtl', () => {
      assert.equal(cacheTtl(LIFETIMES, NOW + 10 * 60 * SECOND, NOW), 10 * 60 * SECOND - SECOND);
    });

    it('leaves nothing to cache (below 1 ms) in the session\'s last second', () => {
      assert.ok(cacheTtl(LIFETIMES, NOW + SECOND, NOW) < 1);
      assert.ok(cacheTtl(LIFETIMES, NOW + 500, NOW) < 1);
    });
  });

  describe('revocationEnd: how long a tombstone lasts', () => {
    it('is idleTimeout plus clockSkew, the longest a token naming the id can still be accepted', () => {
      assert.equal(revocationEnd(LIFETIMES, NOW), NOW + (7200 + 30) * SECOND);
      assert.equal(revocationEnd({ ...LIFETIMES, clockSkew: 0 }, NOW), NOW + 7200 * SECOND);
    });
  });
});
