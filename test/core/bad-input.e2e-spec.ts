import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { SessionClient } from '../support/session-client.js';
import { testEnv } from '../support/test-env.js';

const TRICKY = {
  unicode: 'héllo wörld, 日本語, emoji 🎉👍🏽',
  quotes: `it's "quoted" and \`ticked\` and back\\slash`,
  nul: 'before\u0000after',
  loneSurrogate: 'x\ud800y',
  controls: 'line1\nline2\ttab\r\n',
  nested: { deep: { deeper: { list: [1, 2.5, -3, null, true, 'four', { five: 5 }] } } },
  empty: { object: {}, array: [], string: '' }
};

for (const adapter of ADAPTERS) {
  describe(`session data that cannot be stored (${adapter})`, () => {
    let running: RunningApp;
    const options = realStoreOptions({ maxSessionBytes: 4096 });
    before(async () => (running = await startFixtureApp(adapter, options)));
    after(async () => running?.close());

    async function storedClient(): Promise<SessionClient> {
      const client = new SessionClient(running.url);
      await client.post('/set', { kept: 'previous data' });
      return client;
    }

    const refusals: Array<[string, string, number, RegExp]> = [
      ['a function', '/store-function', 422, /session\.callback: functions cannot be stored/],
      ['a BigInt', '/store-bigint', 422, /session\.big: BigInt values cannot be stored/],
      ['a circular object', '/store-circular', 422, /session\.node\.self: circular reference/],
      ['a __proto__ key', '/store-proto', 422, /session\.payload\.__proto__: the key "__proto__" is refused/],
      ['data over maxSessionBytes', '/store-bytes/5000', 413, /over maxSessionBytes \(4096\)/]
    ];

    for (const [what, path, status, message] of refusals) {
      it(`refuses ${what} with ${status} naming the problem, and keeps the previous data`, async () => {
        const client = await storedClient();
        const response = await client.post(path);
        assert.equal(response.status, status);
        assert.equal(response.body.error, 'SessionDataError');
        assert.match(response.body.message, message);
        assert.equal(response.issued, undefined);
        assert.deepEqual((await client.get('/me')).body, { data: { kept: 'previous data' } });
      });
    }

    it('refuses an unstorable value on a first visit without creating a session', async () => {
      const response = await new SessionClient(running.url).post('/store-bigint');
      assert.equal(response.status, 422);
      assert.equal(response.setCookie, undefined);
    });

    it('stores data up to maxSessionBytes', async () => {
      const client = new SessionClient(running.url);
      assert.equal((await client.post('/store-bytes/3000')).status, 201);
      assert.equal(((await client.get('/me')).body.data.blob as string).length, 3000);
    });
  });

  describe(`session data that round-trips exactly (${adapter})`, () => {
    let running: RunningApp;
    let redis: Redis;
    const options = realStoreOptions();
    before(async () => {
      running = await startFixtureApp(adapter, options);
      redis = new Redis(testEnv().redisUrl);
    });
    after(async () => {
      await running?.close();
      redis?.disconnect();
    });

    it('Unicode, quotes, NUL bytes, lone surrogates and nested values come back exactly from the cache', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', TRICKY);
      assert.deepEqual((await client.get('/me')).body, { data: TRICKY });
    });

    it('and exactly from MySQL when the cache is empty', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', TRICKY);
      const keys = await redis.keys(`${options.keyPrefix}*`);
      await redis.del(...keys);
      assert.deepEqual((await client.get('/me')).body, { data: TRICKY });
    });

    it('nested changes through arrays are tracked and stored', async () => {
      const client = new SessionClient(running.url);
      await client.post('/push/items', { value: 'a' });
      await client.post('/push/items', { value: { b: [1] } });
      assert.deepEqual((await client.get('/me')).body, { data: { items: ['a', { b: [1] }] } });
    });

    it('deleting a key removes it from the stored session', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { a: 1, b: 2 });
      await client.post('/unset/a');
      assert.deepEqual((await client.get('/me')).body, { data: { b: 2 } });
    });
  });
}
