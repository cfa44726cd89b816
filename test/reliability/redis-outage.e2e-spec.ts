import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADAPTERS, type RunningApp } from '../fixtures/fixture-app.js';
import { RedisServer } from '../support/redis-server.js';
import { testEnv } from '../support/test-env.js';
import { startReliabilityApp } from './reliability-app.js';
import { BoundedClient, closeApp, MySqlProbe, readsUntilCacheServes, RedisProbe, sidOf, storeOptions } from './reliability-support.js';

// Faults on a Redis of this spec's own (killed, restarted, paused, flushed); MySQL is the shared one.
// MySQL is the truth: whatever happens to Redis, a read never returns data older than the last
// acknowledged write, and no acknowledged write is lost.

const LOCK_TIMEOUT_S = 5;
const redisServer = new RedisServer();
let redis: RedisProbe;

before(async () => {
  await redisServer.start();
  redis = new RedisProbe(redisServer.url);
});
after(async () => {
  redis?.close();
  await redisServer.stop();
});

for (const adapter of ADAPTERS) {
  describe(`Redis outage (${adapter})`, () => {
    let running: RunningApp;
    let mysql: MySqlProbe;
    let options: ReturnType<typeof storeOptions>;

    before(async () => {
      options = storeOptions(testEnv().mysqlUrl, redisServer.url, { lockTimeout: LOCK_TIMEOUT_S });
      running = await startReliabilityApp(adapter, options);
      mysql = await MySqlProbe.open(testEnv().mysqlUrl, options.tableName);
    });
    after(async () => {
      await closeApp(running);
      await mysql?.close();
    });
    afterEach(async () => {
      if (!redisServer.isRunning) await redisServer.restart();
      await redis.client.call('CLIENT', 'UNPAUSE');
    });

    /** A client whose requests must finish within the lock timeout: a read never waits on Redis reconnects. */
    async function storedClient(data: Record<string, unknown>): Promise<BoundedClient> {
      const client = new BoundedClient(running.url, LOCK_TIMEOUT_S * 1000);
      assert.equal((await client.post('/set', data)).status, 200);
      assert.deepEqual((await client.get('/me')).body, { data }, 'served and cached before the fault');
      return client;
    }

    it('a stored session is read from MySQL, with its data, while Redis is down', async () => {
      const client = await storedClient({ v: 1 });
      await redisServer.kill();
      const response = await client.get('/me');
      assert.equal(response.status, 200);
      assert.deepEqual(response.body, { data: { v: 1 } });
    });

    it('every read while Redis is down answers before the lock timeout: none waits for ioredis to reconnect', async () => {
      const clients = await Promise.all([1, 2, 3].map((i) => storedClient({ i })));
      await redisServer.kill();
      // Spread over ioredis's growing reconnect delays.
      for (let round = 0; round < 4; round++) {
        for (const [index, client] of clients.entries()) {
          const outcome = await client.settle(client.get('/me'));
          if (outcome === 'hung') assert.fail(`read ${round}/${index} did not finish within the ${LOCK_TIMEOUT_S}s lock timeout`);
          assert.equal(outcome.status, 200);
          assert.deepEqual(outcome.body, { data: { i: index + 1 } });
        }
        await sleep(300);
      }
    });

    it('a write while Redis is down is acknowledged, lands in MySQL, and is read back during the outage', async () => {
      const client = await storedClient({ v: 1 });
      await redisServer.kill();
      const write = await client.post('/set', { v: 2 });
      assert.equal(write.status, 200);
      assert.deepEqual(await mysql.data(sidOf(client.token)), { v: 2 });
      assert.deepEqual((await client.get('/me')).body, { data: { v: 2 } });
    });

    it('a first write while Redis is down creates the session in MySQL', async () => {
      await redisServer.kill();
      const client = new BoundedClient(running.url, LOCK_TIMEOUT_S * 1000);
      const write = await client.post('/set', { fresh: true });
      assert.equal(write.status, 200);
      assert.deepEqual(await mysql.data(sidOf(client.token)), { fresh: true });
    });

    it('after Redis restarts empty, reads return the write made during the outage', async () => {
      const client = await storedClient({ v: 1 });
      await redisServer.kill();
      assert.equal((await client.post('/set', { v: 2 })).status, 200);
      await redisServer.restart();
      const seen = await readsUntilCacheServes(client, redis, 0);
      assert.deepEqual(seen.filter((body) => JSON.stringify(body) !== JSON.stringify({ data: { v: 2 } })), []);
    });

    it('after Redis restarts from a snapshot taken before the outage, reads return the write made during the outage', async () => {
      const client = await storedClient({ v: 1 });
      try {
        await redis.client.save(); // what a persisting Redis (RDB or AOF) would load on restart
        await redisServer.kill();
        assert.equal((await client.post('/set', { v: 2 })).status, 200);
        await redisServer.restart();
        const seen = await readsUntilCacheServes(client, redis, 0);
        assert.deepEqual(
          seen.filter((body) => JSON.stringify(body) !== JSON.stringify({ data: { v: 2 } })),
          [],
          'a read returned the value from before the outage'
        );
      } finally {
        if (!redisServer.isRunning) await redisServer.restart();
        await redis.client.flushall();
        await redis.client.save(); // later restarts load an empty snapshot
      }
    });

    it('a cache write that timed out before Redis crashed is not replayed over a newer write', async () => {
      const client = await storedClient({ v: 1 });
      // Redis stalls: the write of v2 commits in MySQL, its cache SET times out but stays queued in ioredis.
      await redis.client.call('CLIENT', 'PAUSE', '3000', 'ALL');
      assert.equal((await client.post('/set', { v: 2 })).status, 200);
      await redisServer.kill();
      assert.equal((await client.post('/set', { v: 3 })).status, 200);
      await redisServer.restart();
      assert.deepEqual(await mysql.data(sidOf(client.token)), { v: 3 });
      const seen = await readsUntilCacheServes(client, redis, 0);
      assert.deepEqual(
        seen.filter((body) => JSON.stringify(body) !== JSON.stringify({ data: { v: 3 } })),
        [],
        'a read returned an older value written back to Redis after the restart'
      );
    });

    it('while Redis stalls, a write is acknowledged and every read, during and after the stall, returns it', async () => {
      const client = await storedClient({ v: 1 });
      const stallMs = 2000;
      const stalledAt = Date.now();
      await redis.client.call('CLIENT', 'PAUSE', String(stallMs), 'ALL');
      assert.equal((await client.post('/set', { v: 2 })).status, 200);
      assert.deepEqual((await client.get('/me')).body, { data: { v: 2 } }, 'during the stall');
      await sleep(stallMs + 200 - (Date.now() - stalledAt));
      assert.deepEqual((await client.get('/me')).body, { data: { v: 2 } }, 'after the stall');
      assert.deepEqual(await redis.cachedData(options.keyPrefix, sidOf(client.token)), { v: 2 }, 'what Redis holds after the stall');
    });

    it('after a network blip that left the old value in Redis, reads return the write made during the blip', async () => {
      const client = await storedClient({ v: 1 });
      const sinceId = await redis.lastClientId();
      // The blip: the app's connections drop and its reconnection stalls for 1.5 s; the key keeps v1.
      await redis.client.multi().call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes').call('CLIENT', 'PAUSE', '1500', 'ALL').exec();
      assert.equal((await client.post('/set', { v: 2 })).status, 200);
      assert.deepEqual(await mysql.data(sidOf(client.token)), { v: 2 });
      const seen = await readsUntilCacheServes(client, redis, sinceId);
      assert.deepEqual(
        seen.filter((body) => JSON.stringify(body) !== JSON.stringify({ data: { v: 2 } })),
        [],
        'a read returned the value cached before the blip'
      );
    });

    it('FLUSHALL between requests loses nothing: the next read is refilled from MySQL', async () => {
      const client = await storedClient({ a: 1 });
      assert.equal((await client.post('/set', { b: 2 })).status, 200);
      await redis.client.flushall();
      const response = await client.get('/me');
      assert.equal(response.status, 200);
      assert.deepEqual(response.body, { data: { a: 1, b: 2 } });
      assert.deepEqual(await redis.cachedData(options.keyPrefix, sidOf(client.token)), { a: 1, b: 2 });
    });

    it('FLUSHALL between two writes keeps both, in MySQL and in what is read', async () => {
      const client = await storedClient({ a: 1 });
      await redis.client.flushall();
      assert.equal((await client.post('/set', { b: 2 })).status, 200);
      assert.deepEqual(await mysql.data(sidOf(client.token)), { a: 1, b: 2 });
      assert.deepEqual((await client.get('/me')).body, { data: { a: 1, b: 2 } });
    });

    it('FLUSHALL between two locked increments keeps the count', async () => {
      const client = new BoundedClient(running.url, LOCK_TIMEOUT_S * 1000);
      assert.deepEqual((await client.post('/inc')).body, { n: 1 });
      await redis.client.flushall();
      assert.deepEqual((await client.post('/inc')).body, { n: 2 });
      assert.deepEqual((await client.get('/me')).body, { data: { n: 2 } });
    });
  });
}
