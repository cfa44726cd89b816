import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { RedisSentinelServer } from '../support/redis-sentinel.js';
import { SessionClient } from '../support/session-client.js';
import { StorageCounters } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';
import {
  assertDestroyWinsAcrossInstances,
  assertExactAcrossInstances,
  assertLastWriterWinsAcrossInstances,
  itCostsWhatTheStorageTableSays,
  refusedWithin
} from './scale-out-support.js';

// Two app instances on one MariaDB and Redis behind Sentinel (a master, a replica that replicates
// through a proxy the spec can hold back, and three Sentinels), clients alternating between them.
for (const adapter of ADAPTERS) {
  describe(`Redis Sentinel behind two instances (${adapter})`, () => {
    const topology = new RedisSentinelServer({ replicationProxy: true });
    let options: ReturnType<typeof realStoreOptions>;
    let first: RunningApp;
    let second: RunningApp;

    before(async () => {
      await topology.start();
      options = realStoreOptions({ redis: topology.sentinelOptions, revocationSyncInterval: 1 });
      first = await startFixtureApp(adapter, options);
      second = await startFixtureApp(adapter, options);
    });
    after(async () => {
      await first?.close();
      await second?.close();
      await topology.stop();
    });

    async function sharedSession(data: Record<string, unknown> = { seed: true }): Promise<[SessionClient, SessionClient]> {
      const one = new SessionClient(first.url);
      await one.post('/set', data);
      return [one, new SessionClient(second.url, 'cookie', one.token)];
    }

    it('data written through one instance is read through the other; a stored read is one command on the master', async () => {
      const [, two] = await sharedSession();
      assert.deepEqual((await two.get('/me')).body.data, { seed: true });
      const master = await topology.currentMaster();
      const counters = await StorageCounters.connect(testEnv().mysqlUrl, `redis://${master.host}:${master.port}`);
      try {
        const usage = await counters.measure(() => two.get('/me'));
        assert.deepEqual({ redis: usage.redis.sent, mysql: usage.mysql.queries }, { redis: { evalsha: 1 }, mysql: 0 });
      } finally {
        await counters.close();
      }
    });

    it('parallel writers of different keys and parallel locked increments, alternating instances, are exact', async () => {
      const [one, two] = await sharedSession();
      await assertExactAcrossInstances(one, two);
    });

    it('parallel writers of one key, alternating instances: all acknowledged, and both instances read the same one of their values', async () => {
      const [one, two] = await sharedSession();
      await assertLastWriterWinsAcrossInstances(one, two);
    });

    it('a write racing a destroy on the other instance never brings the old id back', async () => {
      const [one, two] = await sharedSession();
      await assertDestroyWinsAcrossInstances(one, two);
    });

    describe('storage operations per request, each request through the other instance', () => {
      // Instances of their own whose revocation resync (a background SELECT) stays out of the measured windows.
      let quietFirst: RunningApp;
      let quietSecond: RunningApp;
      before(async () => {
        const quiet = { ...options, revocationSyncInterval: 3600 };
        quietFirst = await startFixtureApp(adapter, quiet);
        quietSecond = await startFixtureApp(adapter, quiet);
      });
      after(async () => {
        await quietFirst?.close();
        await quietSecond?.close();
      });
      itCostsWhatTheStorageTableSays(() => ({ first: quietFirst, second: quietSecond, dataNodes: async () => [await topology.currentMaster()] }));
    });

    it('a session destroyed on one instance is refused by the other at once', async () => {
      const [one, two] = await sharedSession();
      assert.deepEqual((await two.get('/me')).body.data, { seed: true });
      await one.post('/life/destroy');
      const ms = await refusedWithin(two, 2_000);
      assert.ok(ms < 500, `refused only after ${ms} ms`);
    });

    it('after a failover, an entry the promoted replica inherited from before an acknowledged write is not served, and revocations still spread', async () => {
      const [one, two] = await sharedSession({ x: 1 });
      assert.deepEqual((await two.get('/me')).body.data, { x: 1 }); // cached, and replicated
      topology.replicationProxy.pause('from-target');
      assert.equal((await one.post('/set', { x: 2 })).status, 200); // acknowledged: in MySQL and in the master's cache
      const killed = await topology.killMaster();
      topology.replicationProxy.cutAll(); // the held stream dies with its master
      const promoted = await topology.waitForFailover(killed);
      // Reads until both instances read the cache on the promoted master (a read that cannot reach
      // Redis is served from MySQL, which proves nothing here); every one of them must see x = 2.
      const counters = await StorageCounters.connect(testEnv().mysqlUrl, `redis://${promoted.host}:${promoted.port}`);
      try {
        const usage = await counters.measure(async () => {
          const seen = new Set<string>();
          const until = Date.now() + 4_000;
          while (Date.now() < until) {
            for (const client of [one, two]) {
              const answer = await client.fork().get('/me');
              if (answer.status === 200) seen.add(JSON.stringify(answer.body.data));
            }
            await sleep(50);
          }
          return seen;
        });
        assert.deepEqual([...usage.result], [JSON.stringify({ x: 2 })]);
        assert.ok((usage.redis.sent.evalsha ?? 0) > 10, 'the instances read the cache on the promoted master');
      } finally {
        await counters.close();
      }

      const [three, four] = await sharedSession();
      assert.deepEqual((await four.get('/me')).body.data, { seed: true });
      await three.post('/life/destroy');
      await refusedWithin(four, 3_000);
    });
  });
}
