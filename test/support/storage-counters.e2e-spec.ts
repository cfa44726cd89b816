import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createConnection, type Connection } from 'mysql2/promise';
import { StorageCounters } from './storage-counters.js';
import { testEnv } from './test-env.js';

const NOTHING = { redis: { total: 0, byCommand: {}, sent: {} }, mysql: { queries: 0, byCommand: {} } };

describe('StorageCounters', () => {
  const { mysqlUrl, redisUrl } = testEnv();
  let counters: StorageCounters;
  let mysql: Connection;
  let redis: Redis;

  before(async () => {
    counters = await StorageCounters.connect(mysqlUrl, redisUrl);
    mysql = await createConnection(mysqlUrl);
    redis = new Redis(redisUrl);
    await redis.ping();
  });

  after(async () => {
    await counters?.close();
    await mysql?.end();
    redis?.disconnect();
  });

  it('reports no operations for an idle callback, every time', async () => {
    for (let i = 0; i < 3; i++) {
      const { result, ...usage } = await counters.measure(async () => 'idle');
      assert.equal(result, 'idle');
      assert.deepEqual(usage, NOTHING);
    }
  });

  it('counts a single Redis GET', async () => {
    const { result, ...usage } = await counters.measure(() => redis.get('storage-counters:absent'));
    assert.equal(result, null);
    assert.deepEqual(usage, { ...NOTHING, redis: { total: 1, byCommand: { get: 1 }, sent: { get: 1 } } });
  });

  it('counts a single MySQL query', async () => {
    const { result, ...usage } = await counters.measure(() => mysql.query('SELECT 1'));
    assert.ok(Array.isArray(result));
    assert.deepEqual(usage, { ...NOTHING, mysql: { queries: 1, byCommand: { select: 1 } } });
  });

  it('counts a mixed batch exactly', async () => {
    const usage = await counters.measure(async () => {
      await redis.set('storage-counters:key', 'v');
      await redis.get('storage-counters:key');
      await redis.get('storage-counters:key');
      await mysql.query('SELECT 1');
      await mysql.query('DO 1');
    });
    assert.deepEqual(usage.redis, { total: 3, byCommand: { set: 1, get: 2 }, sent: { set: 1, get: 2 } });
    assert.deepEqual(usage.mysql, { queries: 2, byCommand: { select: 1, do: 1 } });
  });

  it('counts the commands a script runs as executed, not as sent', async () => {
    const usage = await counters.measure(() => redis.eval("redis.call('SET', KEYS[1], 'v'); return redis.call('GET', KEYS[1])", 1, 'storage-counters:script'));
    assert.deepEqual(usage.redis, { total: 3, byCommand: { eval: 1, set: 1, get: 1 }, sent: { eval: 1 } });
  });

  it('without MONITOR: snapshots count the same, no monitor client is added, and measure() refuses', async () => {
    const monitors = async () => ((await redis.call('CLIENT', 'LIST')) as string).split('\n').filter((line) => /\bflags=\S*O/.test(line)).length;
    const watching = await monitors();
    const plain = await StorageCounters.connect(mysqlUrl, redisUrl, { monitor: false });
    try {
      assert.equal(await monitors(), watching);
      const before = await plain.snapshot();
      await redis.get('storage-counters:absent');
      await mysql.query('SELECT 1');
      const usage = StorageCounters.usage(before, await plain.snapshot());
      assert.deepEqual(usage, { redis: { total: 1, byCommand: { get: 1 } }, mysql: { queries: 1, byCommand: { select: 1 } } });
      await assert.rejects(plain.measure(async () => undefined), /needs MONITOR/);
    } finally {
      await plain.close();
    }
  });

  it('counts a prepared statement execution as one query', async () => {
    const usage = await counters.measure(() => mysql.execute('SELECT ? AS n', [1]));
    assert.deepEqual(usage.mysql, {
      queries: 1,
      byCommand: { select: 1, stmt_prepare: 1, stmt_execute: 1 },
    });
  });
});
