import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { SessionTelemetry } from '../../lib/observability/session-telemetry.js';
import { RedisSessionCache } from '../../lib/cache/redis-session.cache.js';
import type { CachedSession } from '../../lib/cache/session-cache.js';
import { cacheReads } from '../support/cache-reads.js';
import { freePort } from '../support/free-port.js';
import { RedisServer } from '../support/redis-server.js';
import { StorageCounters } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';

// The Redis cache's failover guard, on real servers: an entry is served only by a master, and only
// if it was stored in that master's current reign (its master_replid), checked once per batch of reads
// in the same MULTI / EXEC as the MGET that reads them.

const entry = (version: number, data = `{"v":${version}}`): CachedSession => ({ data, flash: '{}', expiresAt: Date.now() + 3_600_000, version });
const replidOf = async (redis: Redis) => /^master_replid:(\w+)/m.exec(await redis.info('replication'))![1];

/** A cache on its own connection, once that connection has learned the master's reign. */
async function cacheOn(url: string, prefix: string): Promise<{ cache: RedisSessionCache; client: Redis }> {
  const client = new Redis(url, { enableAutoPipelining: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  await new Promise((resolve) => client.once('ready', resolve));
  const cache = new RedisSessionCache(client, prefix, new SessionTelemetry());
  await sleep(100); // the scripts loaded and the reign read, as after any connect
  return { cache, client };
}

describe('the Redis cache on one server: reign checked once per batch of reads', () => {
  const prefix = `reign-${process.pid}:`;
  let counters: StorageCounters;
  let cache: RedisSessionCache;
  let client: Redis;
  let admin: Redis;

  before(async () => {
    ({ cache, client } = await cacheOn(testEnv().redisUrl, prefix));
    admin = new Redis(testEnv().redisUrl);
    counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
  });
  after(async () => {
    await counters?.close();
    client?.disconnect();
    admin?.disconnect();
  });

  it('the reads one event-loop turn asks for are one round trip: one INFO and one MGET in a transaction', async () => {
    for (const sid of ['a', 'b', 'c']) await cache.set(sid, entry(1), 60_000);
    const usage = await counters.measure(() => Promise.all(['a', 'b', 'c', 'none'].map((sid) => cache.get(sid))));
    assert.deepEqual(usage.result.map((found) => found?.version), [1, 1, 1, undefined]);
    assert.deepEqual(usage.redis.sent, cacheReads(1));
    assert.deepEqual(usage.redis.byCommand, cacheReads(1));
  });

  it('a burst of reads is split into transactions of at most 128 keys', async () => {
    const usage = await counters.measure(() => Promise.all(Array.from({ length: 130 }, (_, i) => cache.get(i % 2 ? 'a' : 'none'))));
    assert.equal(usage.result.filter((found) => found?.version === 1).length, 65);
    assert.deepEqual(usage.redis.byCommand, cacheReads(2));
  });

  it('a client with its own ioredis keyPrefix reads what it wrote: the batched read prefixes its keys too', async () => {
    const prefixed = new Redis(testEnv().redisUrl, { keyPrefix: `app-${process.pid}:`, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    try {
      await new Promise((resolve) => prefixed.once('ready', resolve));
      const onPrefixed = new RedisSessionCache(prefixed, prefix, new SessionTelemetry());
      await sleep(100); // the reign read, as after any connect
      await onPrefixed.set('p', entry(4), 60_000);
      assert.ok(await admin.get(`app-${process.pid}:${prefix}p`), 'the write went under the client\'s keyPrefix');
      assert.equal((await onPrefixed.get('p'))?.version, 4);
    } finally {
      prefixed.disconnect();
    }
  });

  it('a write runs no INFO: it stamps the entry with the reign the connection learned', async () => {
    const usage = await counters.measure(() => cache.set('w', entry(3), 60_000));
    assert.deepEqual(usage.redis.byCommand, { evalsha: 1, getrange: 1, set: 1 });
    assert.ok((await admin.get(`${prefix}w`))!.startsWith(`v3.${await replidOf(admin)}\n`));
    assert.equal((await cache.get('w'))?.version, 3);
  });

  it('an entry stamped by another reign (inherited through a failover) is a miss, and its refill is served', async () => {
    await admin.set(`${prefix}old`, `v9.${'0'.repeat(40)}\n${Date.now() + 3_600_000}\n{"stale":true}\n{}`, 'PX', 60_000);
    assert.equal(await cache.get('old'), undefined);
    const lease = await cache.lease('old');
    assert.ok(lease, 'an inherited entry does not hold the refill back');
    await cache.fill('old', lease, entry(10), 60_000);
    assert.equal((await cache.get('old'))?.version, 10);
  });
});

describe('the Redis cache on a master that is demoted, or demoted and promoted again, keeping its connections', () => {
  const prefix = `reign-${process.pid}:`;
  const server = new RedisServer();
  let cache: RedisSessionCache;
  let client: Redis;
  let admin: Redis;

  before(async () => {
    await server.start();
    ({ cache, client } = await cacheOn(server.url, prefix));
    admin = new Redis(server.url);
  });
  after(async () => {
    client?.disconnect();
    admin?.disconnect();
    await server.stop();
  });

  it('demoted (REPLICAOF a new master it has not synced from yet): its entries are not served, its reign unchanged', async () => {
    await cache.set('s', entry(1), 60_000);
    assert.equal((await cache.get('s'))?.version, 1);
    const reign = await replidOf(admin);
    // Nobody listens there: the replica keeps its old data, as while a resync from the new master is held back.
    await admin.replicaof('127.0.0.1', await freePort());
    try {
      assert.equal(await replidOf(admin), reign, 'a replica that has not synced still reports its reign as master');
      assert.ok((await admin.get(`${prefix}s`))!.startsWith(`v1.${reign}\n`), 'the entry is still there, stamped with that reign');
      // The old master's copy may be older than what the new master acknowledged since: never served.
      assert.equal(await cache.get('s'), undefined);
      assert.equal(await cache.lease('s'), undefined);
      await cache.set('s', entry(2), 60_000); // refused by the replica (READONLY): logged, not thrown
      assert.equal(await cache.get('s'), undefined);
    } finally {
      await admin.replicaof('NO', 'ONE');
    }
  });

  it('demoted and promoted again: what it stored in its earlier reign is a miss, and so is a write stamped with that reign', async () => {
    await admin.flushall();
    await sleep(50);
    const earlier = await replidOf(admin);
    await cache.get('warm'); // the connection learns the current reign
    await cache.set('t', entry(1), 60_000);
    assert.ok((await admin.get(`${prefix}t`))!.startsWith(`v1.${earlier}\n`));
    await admin.replicaof('127.0.0.1', await freePort());
    await admin.replicaof('NO', 'ONE');
    assert.notEqual(await replidOf(admin), earlier, 'a promotion starts a new reign');
    // The cache's connection never saw the change: its next write still names the earlier reign...
    await cache.set('t', entry(2), 60_000);
    assert.ok((await admin.get(`${prefix}t`))!.startsWith(`v2.${earlier}\n`));
    // ...which is over: the entry reads as a miss, and the read teaches the connection the new reign.
    assert.equal(await cache.get('t'), undefined);
    const lease = await cache.lease('t');
    assert.ok(lease);
    await cache.fill('t', lease, entry(2), 60_000);
    assert.equal((await cache.get('t'))?.version, 2);
    assert.ok((await admin.get(`${prefix}t`))!.startsWith(`v2.${await replidOf(admin)}\n`));
  });
});
