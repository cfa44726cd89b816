import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { RedisClusterServer } from '../support/redis-cluster.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { StorageCounters } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';
import {
  assertDestroyWinsAcrossInstances,
  assertExactAcrossInstances,
  assertLastWriterWinsAcrossInstances,
  itCostsWhatTheStorageTableSays,
  refusedWithin
} from './scale-out-support.js';

// Two app instances on one MariaDB and a real 3-master Redis Cluster (each master with a replica),
// every client alternating between the instances, as behind a load balancer without sticky sessions.
for (const adapter of ADAPTERS) {
  describe(`a Redis Cluster behind two instances (${adapter})`, () => {
    const cluster = new RedisClusterServer({ replicationProxy: true });
    let options: ReturnType<typeof realStoreOptions>;
    let first: RunningApp;
    let second: RunningApp;

    before(async () => {
      await cluster.start();
      options = realStoreOptions({ redis: { cluster: cluster.startupNodes }, revocationSyncInterval: 1 });
      first = await startFixtureApp(adapter, options);
      second = await startFixtureApp(adapter, options);
    });
    after(async () => {
      await first?.close();
      await second?.close();
      await cluster.stop();
    });

    const keyOf = (client: SessionClient) => `${options.keyPrefix}${claimsOf(client.token).sid}`;
    /** A session stored through one instance, with a client for each. */
    async function sharedSession(data: Record<string, unknown> = { seed: true }): Promise<[SessionClient, SessionClient]> {
      const one = new SessionClient(first.url);
      await one.post('/set', data);
      return [one, new SessionClient(second.url, 'cookie', one.token)];
    }

    it('data written through one instance is read through the other, and sessions spread over every master', async () => {
      const masters = new Set<string>();
      for (let i = 0; i < 24; i++) {
        const [one, two] = await sharedSession({ i });
        assert.deepEqual((await two.get('/me')).body.data, { i });
        masters.add(cluster.masterForKey(keyOf(one)).id);
      }
      assert.equal(masters.size, 3);
    });

    it('a stored read is one command on the master that holds the session, and the MySQL row is not read', async () => {
      const [, two] = await sharedSession();
      await two.get('/me'); // cached
      // Straight to the node, not through its proxy, so the counters can tell their own commands apart.
      const node = cluster.directEndpoint(cluster.masterForKey(keyOf(two)));
      const counters = await StorageCounters.connect(testEnv().mysqlUrl, `redis://${node.host}:${node.port}`);
      try {
        const usage = await counters.measure(async () => {
          for (let i = 0; i < 10; i++) await two.get('/me');
        });
        assert.deepEqual({ redis: usage.redis.sent, mysql: usage.mysql.queries }, { redis: { evalsha: 10 }, mysql: 0 });
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
      itCostsWhatTheStorageTableSays(() => ({ first: quietFirst, second: quietSecond, dataNodes: async () => {
        await cluster.refresh();
        return cluster.masters.map((node) => cluster.directEndpoint(node));
      } }));
    });

    it('a session destroyed on one instance is refused by the other at once, over sharded pub/sub', async () => {
      const [one, two] = await sharedSession();
      assert.deepEqual((await two.get('/me')).body.data, { seed: true });
      await one.post('/life/destroy');
      const ms = await refusedWithin(two, 2_000);
      assert.ok(ms < 500, `refused only after ${ms} ms`);
    });

    it('after a failover of the master that holds the revocation channel, revocations still reach the other instance', async () => {
      const channelMaster = cluster.masterForKey(`${options.keyPrefix}revoked`);
      await cluster.killMaster(channelMaster);
      await sleep(500);
      const [one, two] = await sharedSession();
      assert.deepEqual((await two.get('/me')).body.data, { seed: true });
      await one.post('/life/destroy');
      // Resubscribed on the promoted master, or at worst read back by the next sync (every second here).
      await refusedWithin(two, 3_000);
    });

    it('after a failover, an entry the promoted replica inherited from before an acknowledged write is not served', async () => {
      // A session on a master that still has a replica (the failover above left one without).
      await cluster.refresh();
      let [one, two] = await sharedSession({ x: 1 });
      while (cluster.replicasOf(cluster.masterForKey(keyOf(one))).length === 0) [one, two] = await sharedSession({ x: 1 });
      assert.deepEqual((await two.get('/me')).body.data, { x: 1 }); // cached, and replicated
      const master = cluster.masterForKey(keyOf(one));
      await cluster.pauseReplication(master);
      assert.equal((await one.post('/set', { x: 2 })).status, 200); // acknowledged: in MySQL and in the master's cache
      await cluster.killMaster(master); // the replica, which never got x = 2, takes over
      await sleep(500);
      for (const client of [one, two]) {
        let data: unknown;
        for (let attempt = 0; attempt < 40; attempt++) {
          const answer = await client.fork().get('/me');
          if (answer.status === 200) {
            data = answer.body.data;
            break;
          }
          await sleep(100);
        }
        assert.deepEqual(data, { x: 2 });
      }
    });
  });
}
