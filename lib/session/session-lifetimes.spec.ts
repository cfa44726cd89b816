import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { SessionLifetimes } from './session-lifetimes.js';

const T0 = 1_900_000_000_000;
const options = {
  idleTimeout: 3600,
  absoluteTimeout: 86400,
  maxIdleTimeout: 30 * 86400,
  maxAbsoluteTimeout: 90 * 86400,
  cacheTtl: 3600,
  clockSkew: 30,
  cookie: { browserSession: true }
} as unknown as ResolvedOptions;
const lifetimes = new SessionLifetimes(options, { now: () => T0 });
const created = T0 / 1000;
const plain = { createdAt: created, lifetime: undefined };
const remembered = { createdAt: created, lifetime: [30 * 86400, 90 * 86400] as [number, number] };

describe('SessionLifetimes', () => {
  it("decides a session's token, row and refresh by its own lifetime, else the module's", () => {
    assert.equal(lifetimes.tokenExpiry(plain, created), created + 3600);
    assert.equal(lifetimes.tokenExpiry(remembered, created), created + 30 * 86400);
    assert.equal(lifetimes.rowExpiry(remembered, T0), T0 + 30 * 86400 * 1000);
    assert.equal(lifetimes.refreshDue(plain.lifetime, created, created + 1800), true);
    assert.equal(lifetimes.refreshDue(remembered.lifetime, created, created + 1800), false);
    assert.equal(lifetimes.absoluteEnded(created, plain.lifetime, created + 86400), true);
    assert.equal(lifetimes.absoluteEnded(created, remembered.lifetime, created + 86400), false);
  });

  it('keeps a lifetime a token claims within the module bounds', () => {
    const greedy = { createdAt: created, lifetime: [400 * 86400, 400 * 86400] as [number, number] };
    assert.equal(lifetimes.tokenExpiry(greedy, created), created + 30 * 86400);
  });

  it('makes a browser-session cookie only for sessions without a lifetime of their own', () => {
    assert.equal(lifetimes.cookieMaxAge(plain, created + 3600, created), undefined);
    assert.equal(lifetimes.cookieMaxAge(remembered, created + 600, created), 600);
  });

  it('refuses a requested lifetime outside the bounds, and fills an omitted part from the module', () => {
    assert.deepEqual(lifetimes.requested({ idleTimeout: 7 * 86400 }), [7 * 86400, 7 * 86400]);
    assert.deepEqual(lifetimes.requested({ absoluteTimeout: 7200 }), [3600, 7200]);
    assert.throws(() => lifetimes.requested({ idleTimeout: 31 * 86400 }), /idleTimeout must be a number of seconds from 1 to 2592000 \(the maxIdleTimeout option\)/);
    assert.throws(() => lifetimes.requested({ idleTimeout: 7200, absoluteTimeout: 3600 }), /absoluteTimeout \(3600\) must not be shorter than idleTimeout \(7200\)/);
  });

  it('keeps tombstones as long as the longest token any session can hold', () => {
    assert.equal(lifetimes.revocationEnd(T0), T0 + (30 * 86400 + 30) * 1000);
  });
});
