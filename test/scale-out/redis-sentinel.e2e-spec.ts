import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { cacheReads } from '../support/cache-reads.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { OpenResources } from '../support/open-resources.js';
import { RedisSentinelServer } from '../support/redis-sentinel.js';
import { SessionClient } from '../support/session-client.js';
import { StorageCounters } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';
import { TIMEOUTS } from '../support/topology-timeouts.js';
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
  describe(`Redis Sentinel behind two instances (${adapter})`, { timeout: TIMEOUTS.suite }, () => {
    const topology = new RedisSentinelServer({ replicationProxy: true });
    const open = new OpenResources();
    let options: ReturnType<typeof realStoreOptions>;
    let first: RunningApp;
    let second: RunningApp;

    before(async () => {
      open.add(topology, (servers) => servers.stop());
      await topology.start();
      // No background revocation resync (a SELECT every interval) in the windows the counters
      // measure: the instances that need it, for the failover at the end, are started there.
      options = realStoreOptions({ redis: topology.sentinelOptions, revocationSyncInterval: 0 });
      first = open.add(await startFixtureApp(adapter, options), (app) => app.close());
      second = open.add(await startFixtureApp(adapter, options), (app) => app.close());
    }, { timeout: TIMEOUTS.hook });
    after(async () => {
      await StorageCounters.closeAll();
      await open.closeAll();
    }, { timeout: TIMEOUTS.hook });

    /** A session stored through one instance, with a client for each. */
    async function sharedSession(data: Record<string, unknown> = { seed: true }, [a, b] = [first, second]): Promise<[SessionClient, SessionClient]> {
      const one = new SessionClient(a.url);
      await one.post('/set', data);
      return [one, new SessionClient(b.url, 'cookie', one.token)];
    }

    it('data written through one instance is read through the other; a stored read is one round trip to the master', { timeout: TIMEOUTS.test }, async () => {
      const [, two] = await sharedSession();
      assert.deepEqual((await two.get('/me')).body.data, { seed: true });
      const master = await topology.currentMaster();
      const counters = await StorageCounters.connect(testEnv().mysqlUrl, `redis://${master.host}:${master.port}`);
      try {
        const usage = await counters.measure(() => two.get('/me'));
        assert.deepEqual({ redis: usage.redis.sent, mysql: usage.mysql.queries }, { redis: cacheReads(1), mysql: 0 });
      } finally {
        await counters.close();
      }
    });

    it('parallel writers of different keys and parallel locked increments, alternating instances, are exact', { timeout: TIMEOUTS.test }, async () => {
      const [one, two] = await sharedSession();
      await assertExactAcrossInstances(one, two);
    });

    it('parallel writers of one key, alternating instances: all acknowledged, and both instances read the same one of their values', { timeout: TIMEOUTS.test }, async () => {
      const [one, two] = await sharedSession();
      await assertLastWriterWinsAcrossInstances(one, two);
    });

    it('a write racing a destroy on the other instance never brings the old id back', { timeout: TIMEOUTS.test }, async () => {
      const [one, two] = await sharedSession();
      await assertDestroyWinsAcrossInstances(one, two);
    });

    describe('storage operations per request, each request through the other instance', () => {
      itCostsWhatTheStorageTableSays(() => ({ first, second, dataNodes: async () => [await topology.currentMaster()], cachedRead: cacheReads(1) }));
    });

    it('a session destroyed on one instance is refused by the other at once', { timeout: TIMEOUTS.test }, async () => {
      const [one, two] = await sharedSession();
      assert.deepEqual((await two.get('/me')).body.data, { seed: true });
      await one.post('/life/destroy');
      const ms = await refusedWithin(two, 2_000);
      assert.ok(ms < 500, `refused only after ${ms} ms`);
    });

    describe('failover', () => {
      // Instances of their own that also resync revocations from MySQL every second: what a
      // revocation falls back on while the subscriber moves to the promoted master.
      let syncingFirst: RunningApp;
      let syncingSecond: RunningApp;
      before(async () => {
        const syncing = { ...options, revocationSyncInterval: 1 };
        syncingFirst = open.add(await startFixtureApp(adapter, syncing), (app) => app.close());
        syncingSecond = open.add(await startFixtureApp(adapter, syncing), (app) => app.close());
      }, { timeout: TIMEOUTS.hook });

      it('after a failover, an entry the promoted replica inherited from before an acknowledged write is not served, and revocations still spread', { timeout: TIMEOUTS.failover }, async () => {
        const [one, two] = await sharedSession({ x: 1 }, [syncingFirst, syncingSecond]);
        assert.deepEqual((await two.get('/me')).body.data, { x: 1 }); // cached, and replicated
        topology.replicationProxy.pause('from-target');
        assert.equal((await one.post('/set', { x: 2 })).status, 200); // acknowledged: in MySQL and in the master's cache
        const killed = await topology.killMaster();
        topology.replicationProxy.cutAll(); // the held stream dies with its master
        const promoted = await topology.waitForFailover(killed);
        // Reads for 4 s and until both instances read the cache on the promoted master (a read that
        // cannot reach Redis is served from MySQL, which proves nothing here); every one must see x = 2.
        const counters = await StorageCounters.connect(testEnv().mysqlUrl, `redis://${promoted.host}:${promoted.port}`);
        try {
          const usage = await counters.measure(async () => {
            const seen = new Set<string>();
            const started = Date.now();
            const bothReadTheCache = () => {
              const bySource = [...counters.sentSoFarBySource('exec').values()];
              return bySource.length >= 2 && bySource.reduce((sum, n) => sum + n, 0) > 10;
            };
            while (Date.now() - started < 4_000 || (!bothReadTheCache() && Date.now() - started < 30_000)) {
              for (const client of [one, two]) {
                const answer = await client.fork().get('/me');
                if (answer.status === 200) seen.add(JSON.stringify(answer.body.data));
              }
              await sleep(50);
            }
            return seen;
          });
          assert.deepEqual([...usage.result], [JSON.stringify({ x: 2 })]);
          assert.ok((usage.redis.sent.exec ?? 0) > 10, 'the instances read the cache on the promoted master');
        } finally {
          await counters.close();
        }

        const [three, four] = await sharedSession({ seed: true }, [syncingFirst, syncingSecond]);
        assert.deepEqual((await four.get('/me')).body.data, { seed: true });
        await three.post('/life/destroy');
        await refusedWithin(four, 3_000);
      });
    });
  });
}
