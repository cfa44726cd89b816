import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { cacheReads } from '../support/cache-reads.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { StorageCounters, type StorageUsage } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';
import { SessionTokenCodec } from '../../lib/token/session-token.codec.js';

// Every count here is read from the servers (Redis INFO commandstats, MariaDB status counters).
for (const adapter of ADAPTERS) {
  describe(`storage operations per request (${adapter})`, () => {
    let running: RunningApp;
    let counters: StorageCounters;
    const options = realStoreOptions();

    before(async () => {
      running = await startFixtureApp(adapter, options);
      counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
    });
    after(async () => {
      await running?.close();
      await counters?.close();
    });

    const measure = <T>(fn: () => Promise<T>) => counters.measure(fn);
    // Redis: the commands the app sent (round trips); a script's own GET and SET run inside Redis (see the byCommand checks).
    const io = (usage: StorageUsage) => ({ redis: usage.redis.sent, mysql: usage.mysql.queries });

    async function storedClient(): Promise<SessionClient> {
      const client = new SessionClient(running.url);
      await client.post('/set', { cart: ['apple'] });
      assert.equal(claimsOf(client.token).stored, true);
      return client;
    }

    it('a handler without EzSession decorators costs nothing, even with a stored session token', async () => {
      const client = await storedClient();
      const usage = await measure(() => client.get('/plain'));
      assert.equal(usage.result.status, 200);
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
      assert.equal(usage.result.setCookie, undefined);
    });

    it('a handler without EzSession decorators does not even verify the token', async () => {
      const client = await storedClient();
      const codec = running.app.get(SessionTokenCodec, { strict: false });
      const verify = codec.verify;
      let verified = 0;
      codec.verify = (...args) => {
        verified++;
        return verify.apply(codec, args);
      };
      try {
        assert.equal((await client.get('/plain')).status, 200);
        assert.equal(verified, 0);
        await client.get('/me');
        assert.equal(verified, 1);
      } finally {
        codec.verify = verify;
      }
    });

    it('a session that stores nothing and writes nothing costs nothing', async () => {
      const client = new SessionClient(running.url);
      await client.post('/claims', { theme: 'dark' });
      const usage = await measure(() => client.get('/me'));
      assert.deepEqual(usage.result.body, { data: {} });
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
      assert.equal(usage.result.issued, undefined);
    });

    it('changing only claims costs nothing and the new token carries them', async () => {
      const client = new SessionClient(running.url);
      const usage = await measure(() => client.post('/claims', { role: 'admin' }));
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
      assert.equal(claimsOf(usage.result.issued).role, 'admin');
      assert.equal(claimsOf(usage.result.issued).stored, false);
      const read = await measure(() => client.get('/claims'));
      assert.deepEqual(read.result.body, { claims: { role: 'admin' } });
      assert.deepEqual(io(read), { redis: {}, mysql: 0 });
    });

    it('the first write is one INSERT in MySQL and one guarded cache write in Redis, then a stored=true token', async () => {
      const client = new SessionClient(running.url);
      const usage = await measure(() => client.post('/set', { userId: 7 }));
      assert.equal(usage.result.status, 200);
      assert.deepEqual(io(usage), { redis: { evalsha: 1 }, mysql: 1 });
      assert.equal(usage.mysql.byCommand.insert, 1);
      // The cache write is a script that compares versions: it reads the entry's head (GETRANGE) and SETs
      // inside Redis. The entry comes stamped with the master's reign the connection learned at connect: no INFO of its own.
      assert.deepEqual(usage.redis.byCommand, { evalsha: 1, getrange: 1, set: 1 });
      assert.equal(claimsOf(usage.result.issued).stored, true);
    });

    it('a first write of a session known only by its claims is one INSERT that checks the id was not revoked', async () => {
      const client = new SessionClient(running.url);
      await client.post('/claims', { theme: 'dark' });
      const usage = await measure(() => client.post('/set', { userId: 7 }));
      assert.deepEqual(io(usage), { redis: { evalsha: 1 }, mysql: 1 });
      assert.equal(usage.mysql.byCommand.insert_select, 1);
      assert.equal(claimsOf(usage.result.issued).stored, true);
    });

    it('a stored read is one Redis round trip on a cache hit: a transaction that reads the entry and the reign it is checked against', async () => {
      const client = await storedClient();
      const usage = await measure(() => client.get('/me'));
      assert.deepEqual(usage.result.body, { data: { cart: ['apple'] } });
      // MULTI / INFO / MGET / EXEC, sent together: the INFO proves the server is the master of the entry's reign.
      assert.deepEqual(io(usage), { redis: cacheReads(1), mysql: 0 });
      assert.deepEqual(usage.redis.byCommand, cacheReads(1));
    });

    it('a stored read on a cache miss (key evicted) is one SELECT between a lease and a guarded refill', async () => {
      const client = await storedClient();
      const redis = new Redis(testEnv().redisUrl);
      await redis.del(`${options.keyPrefix}${claimsOf(client.token).sid}`);
      redis.disconnect();
      const miss = await measure(() => client.get('/me'));
      assert.deepEqual(miss.result.body, { data: { cart: ['apple'] } });
      // The read, then the lease and the refill: two scripts.
      assert.deepEqual(io(miss), { redis: { ...cacheReads(1), evalsha: 2 }, mysql: 1 });
      const hit = await measure(() => client.get('/me'));
      assert.deepEqual(io(hit), { redis: cacheReads(1), mysql: 0 });
    });

    it('a stored session read without changes writes nothing and issues no token', async () => {
      const client = await storedClient();
      const usage = await measure(() => client.post('/set', { cart: ['apple'] }));
      assert.deepEqual(io(usage), { redis: cacheReads(1), mysql: 0 });
      assert.equal(usage.result.issued, undefined);
    });

    it('a later write is the read before the handler, then one UPDATE and one guarded cache write, with no new token', async () => {
      const client = await storedClient();
      const usage = await measure(() => client.post('/set', { coupon: 'SAVE10' }));
      assert.deepEqual(io(usage), { redis: { ...cacheReads(1), evalsha: 1 }, mysql: 1 });
      assert.equal(usage.mysql.byCommand.update, 1);
      assert.equal(usage.result.issued, undefined);
    });

    it('removing all data deletes the row and the key, issues stored=false, and later requests cost nothing', async () => {
      const client = await storedClient();
      const usage = await measure(() => client.post('/clear'));
      assert.deepEqual(io(usage), { redis: { ...cacheReads(1), del: 1 }, mysql: 1 });
      assert.equal(usage.mysql.byCommand.delete, 1);
      assert.equal(claimsOf(usage.result.issued).stored, false);
      const later = await measure(() => client.get('/me'));
      assert.deepEqual(later.result.body, { data: {} });
      assert.deepEqual(io(later), { redis: {}, mysql: 0 });
    });

    it('a locked increment is lock-and-read in one statement, then UPDATE and unlock, and one guarded cache write', async () => {
      const client = new SessionClient(running.url);
      await client.post('/inc');
      const usage = await measure(() => client.post('/inc'));
      assert.deepEqual(usage.result.body, { n: 2 });
      // MariaDB: GET_LOCK and the read are one SELECT (on MySQL they are two statements).
      assert.deepEqual(io(usage), { redis: { evalsha: 1 }, mysql: 3 });
      assert.deepEqual({ select: usage.mysql.byCommand.select, update: usage.mysql.byCommand.update }, { select: 2, update: 1 });
    });
  });
}
