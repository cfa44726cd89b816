import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADAPTERS, startFixtureApp, TEST_SECRET, type RunningApp } from '../fixtures/fixture-app.js';
import { claimsOf, SessionClient } from '../support/session-client.js';

// The development default: sql.js (SQLite compiled to WebAssembly) and the in-process cache.
for (const adapter of ADAPTERS) {
  describe(`embedded SQLite store (${adapter})`, () => {
    let running: RunningApp;
    before(async () => (running = await startFixtureApp(adapter, { secret: TEST_SECRET, database: { type: 'sqljs' }, lockTimeout: 10 })));
    after(async () => running?.close());

    it('stores, reads and removes session data', async () => {
      const client = new SessionClient(running.url);
      await client.post('/login');
      assert.deepEqual((await client.get('/me')).body, { data: { userId: 42 } });
      await client.post('/clear');
      assert.equal(claimsOf(client.token).stored, false);
      assert.deepEqual((await client.get('/me')).body, { data: {} });
    });

    it('serializes 20 parallel locked increments with its in-process lock', async () => {
      const client = new SessionClient(running.url);
      await client.post('/inc');
      await Promise.all(Array.from({ length: 19 }, () => client.fork().post('/inc')));
      assert.deepEqual((await client.get('/me')).body, { data: { n: 20 } });
    });

    it('keeps parallel writers of different keys', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { base: true });
      await Promise.all([client.fork().post('/set-slowly', { a: 1 }), client.fork().post('/set', { b: 2 })]);
      assert.deepEqual((await client.get('/me')).body, { data: { base: true, a: 1, b: 2 } });
    });

    it('delivers flash to the next request', async () => {
      const client = new SessionClient(running.url);
      await client.post('/flash', { key: 'notice', value: 'Saved' });
      assert.deepEqual((await client.get('/flash/notice')).body, { value: 'Saved' });
      assert.deepEqual((await client.get('/flash/notice')).body, { value: null });
    });
  });
}
