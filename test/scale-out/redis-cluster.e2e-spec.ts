import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { OpenResources } from '../support/open-resources.js';
import { RedisClusterServer } from '../support/redis-cluster.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
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

// Two app instances on one MariaDB and a real 3-master Redis Cluster (each master with a replica),
// every client alternating between the instances, as behind a load balancer without sticky sessions.
for (const adapter of ADAPTERS) {
  describe(`a Redis Cluster behind two instances (${adapter})`, { timeout: TIMEOUTS.suite }, () => {
    const cluster = new RedisClusterServer({ replicationProxy: true });
    const open = new OpenResources();
    let options: ReturnType<typeof realStoreOptions>;
    let first: RunningApp;
    let second: RunningApp;

    before(async () => {
      open.add(cluster, (servers) => servers.stop());
      await cluster.start();
      // No background revocation resync (a SELECT every interval) in the windows the counters
      // measure: the instances that need it, for the failovers at the end, are started there.
      options = realStoreOptions({ redis: { cluster: cluster.startupNodes }, revocationSyncInterval: 0 });
      first = open.add(await startFixtureApp(adapter, options), (app) => app.close());
      second = open.add(await startFixtureApp(adapter, options), (app) => app.close());
    }, { timeout: TIMEOUTS.hook });
    after(async () => {
      await StorageCounters.closeAll();
      await open.closeAll();
    }, { timeout: TIMEOUTS.hook });

    const keyOf = (client: SessionClient) => `${options.keyPrefix}${claimsOf(client.token).sid}`;
    /** A session stored through one instance, with a client for each. */
    async function sharedSession(data: Record<string, unknown> = { seed: true }, [a, b] = [first, second]): Promise<[SessionClient, SessionClient]> {
      const one = new SessionClient(a.url);
      await one.post('/set', data);
      return [one, new SessionClient(b.url, 'cookie', one.token)];
    }

    it('data written through one instance is read through the other, and sessions spread over every master', { timeout: TIMEOUTS.test }, async () => {
      const masters = new Set<string>();
      for (let i = 0; i < 24; i++) {
        const [one, two] = await sharedSession({ i });
        assert.deepEqual((await two.get('/me')).body.data, { i });
        masters.add(cluster.masterForKey(keyOf(one)).id);
      }
      assert.equal(masters.size, 3);
    });

    it('a stored read is one command on the master that holds the session, and the MySQL row is not read', { timeout: TIMEOUTS.test }, async () => {
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
      // On a Cluster each read is one read script on the key's own master.
      itCostsWhatTheStorageTableSays(() => ({
        first,
        second,
        dataNodes: async () => {
          await cluster.refresh();
          return cluster.masters.map((node) => cluster.directEndpoint(node));
        },
        cachedRead: { evalsha: 1 }
      }));
    });

    it('a session destroyed on one instance is refused by the other at once, over sharded pub/sub', { timeout: TIMEOUTS.test }, async () => {
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
      const syncing = (): [RunningApp, RunningApp] => [syncingFirst, syncingSecond];
      before(async () => {
        const withSync = { ...options, revocationSyncInterval: 1 };
        syncingFirst = open.add(await startFixtureApp(adapter, withSync), (app) => app.close());
        syncingSecond = open.add(await startFixtureApp(adapter, withSync), (app) => app.close());
      }, { timeout: TIMEOUTS.hook });

      it('after a failover of the master that holds the revocation channel, revocations still reach the other instance', { timeout: TIMEOUTS.failover }, async () => {
        const channelMaster = cluster.masterForKey(`${options.keyPrefix}revoked`);
        await cluster.killMaster(channelMaster);
        await sleep(500);
        const [one, two] = await sharedSession({ seed: true }, syncing());
        assert.deepEqual((await two.get('/me')).body.data, { seed: true });
        await one.post('/life/destroy');
        // Resubscribed on the promoted master, or at worst read back by the next sync (every second here).
        await refusedWithin(two, 3_000);
      });

      it('after a failover, an entry the promoted replica inherited from before an acknowledged write is not served', { timeout: TIMEOUTS.failover }, async () => {
        // A session on a master that still has a replica (the failover above left one without).
        await cluster.refresh();
        let [one, two] = await sharedSession({ x: 1 }, syncing());
        while (cluster.replicasOf(cluster.masterForKey(keyOf(one))).length === 0) [one, two] = await sharedSession({ x: 1 }, syncing());
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
  });
}
