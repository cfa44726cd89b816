import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { EzSessionService } from '../../lib/index.js';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { StorageCounters } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';

// Real time with short timeouts: an idle window of 3 s, no clock skew allowance. Token times are
// whole seconds, so a token's life is between idle - 1 and idle seconds.
for (const adapter of ADAPTERS) {
  describe(`expiry (${adapter})`, () => {
    let running: RunningApp;
    let mysql: Connection;
    let redis: Redis;
    let counters: StorageCounters;
    const options = realStoreOptions({ idleTimeout: 3, absoluteTimeout: 5, clockSkew: 0, gcInterval: 0 });

    before(async () => {
      running = await startFixtureApp(adapter, options);
      mysql = await createConnection(testEnv().mysqlUrl);
      redis = new Redis(testEnv().redisUrl);
      counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
    });
    after(async () => {
      await running?.close();
      await mysql?.end();
      redis?.disconnect();
      await counters?.close();
    });

    const expiresAt = async (sid: string) => {
      const [rows] = await mysql.query<RowDataPacket[]>(`SELECT expires_at FROM ${options.tableName} WHERE sid = ?`, [sid]);
      return rows[0] ? Number(rows[0].expires_at) : undefined;
    };

    it('a session left idle longer than idleTimeout is gone', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { cart: ['book'] });
      await sleep(3200);
      assert.deepEqual((await client.get('/me')).body, { data: {} });
    });

    it('a stored row past its expiry is never read, even before GC deletes it', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { cart: ['book'] });
      const { sid } = claimsOf(client.token);
      await mysql.query(`UPDATE ${options.tableName} SET expires_at = ? WHERE sid = ?`, [Date.now() - 1, sid]);
      await redis.del(`${options.keyPrefix}${sid}`);
      const response = await client.get('/me');
      assert.deepEqual(response.body, { data: {} });
      assert.notEqual(claimsOf(response.issued).sid, sid);
      assert.equal(claimsOf(response.issued).stored, false);
    });

    it('activity past half the idle window re-issues the token and keeps the session alive', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { cart: ['book'] });
      const first = client.token;
      await sleep(1600);
      const active = await client.get('/me');
      assert.ok(active.issued && active.issued !== first, 'a fresh token after half the idle window');
      await sleep(1700); // 3.3 s after the write: past the first token's life
      assert.deepEqual((await client.get('/me')).body, { data: { cart: ['book'] } });
    });

    it('activity within the first half of the idle window issues no token and writes nothing', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { cart: ['book'] });
      const usage = await counters.measure(() => client.get('/me'));
      assert.equal(usage.result.issued, undefined);
      assert.deepEqual({ redis: usage.redis.sent, mysql: usage.mysql.queries }, { redis: { evalsha: 1 }, mysql: 0 });
    });

    it('extends a stored row at most once per half window, with one UPDATE', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { cart: ['book'] });
      const { sid } = claimsOf(client.token);
      const before = await expiresAt(sid);
      await sleep(1600);
      const touch = await counters.measure(() => client.get('/me'));
      assert.equal(touch.mysql.byCommand.update, 1);
      const extended = await expiresAt(sid);
      assert.ok(extended! > before!, 'expiry moved forward');
      const next = await counters.measure(() => client.get('/me'));
      assert.equal(next.mysql.byCommand.update ?? 0, 0);
    });

    it('ends at the absolute timeout however active the session is', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { cart: ['book'] });
      const created = claimsOf(client.token).sct;
      // sct is whole seconds, so the cap falls 4 to 5 s after the write: active until 3.6 s, then past 5 s.
      for (let i = 0; i < 3; i++) {
        await sleep(1200);
        const response = await client.get('/me');
        assert.deepEqual(response.body, { data: { cart: ['book'] } });
        if (response.issued) assert.ok(claimsOf(response.issued).exp <= created + 5, 'token never outlives the absolute timeout');
      }
      await sleep(1600);
      assert.deepEqual((await client.get('/me')).body, { data: {} });
    });

    it('never lets a Redis entry outlive its row', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { cart: ['book'] });
      const { sid } = claimsOf(client.token);
      const ttl = await redis.pttl(`${options.keyPrefix}${sid}`);
      const keyDiesBy = Date.now() + ttl; // an upper bound: the TTL was read before this moment
      const rowEnds = (await expiresAt(sid))!;
      assert.ok(ttl > 0, 'the key has a TTL');
      assert.ok(keyDiesBy <= rowEnds + 2, `key dies by ${keyDiesBy}, row ends at ${rowEnds}`);
    });
  });

  describe(`garbage collection (${adapter})`, () => {
    let running: RunningApp;
    let mysql: Connection;
    let counters: StorageCounters;
    const options = realStoreOptions({ gcInterval: 0, gcBatchSize: 1000 });

    before(async () => {
      running = await startFixtureApp(adapter, options);
      mysql = await createConnection(testEnv().mysqlUrl);
      counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
    });
    after(async () => {
      await running?.close();
      await mysql?.end();
      await counters?.close();
    });

    async function insertExpired(count: number): Promise<void> {
      const past = Date.now() - 1000;
      const rows = Array.from({ length: count }, (_, i) => [`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, '{}', '{}', past, past, past]);
      await mysql.query(`INSERT INTO ${options.tableName} (sid, data, flash, created_at, updated_at, expires_at) VALUES ?`, [rows]);
    }

    it('deletes exactly the expired rows, in batches of gcBatchSize, and keeps live sessions', async () => {
      const live = new SessionClient(running.url);
      await live.post('/set', { alive: true });
      await insertExpired(2500);
      const usage = await counters.measure(() => running.app.get(EzSessionService).gc());
      assert.equal(usage.result, 2500);
      assert.ok(usage.mysql.byCommand.delete >= 3, `batched into ${usage.mysql.byCommand.delete} DELETE statements`);
      const [[{ n }]] = await mysql.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${options.tableName}`);
      assert.equal(Number(n), 1);
      assert.deepEqual((await live.get('/me')).body, { data: { alive: true } });
    });

    it('runs on its own schedule', async () => {
      const scheduled = await startFixtureApp(adapter, realStoreOptions({ tableName: options.tableName, gcInterval: 1 }));
      try {
        await insertExpired(10);
        await sleep(1500);
        const [[{ n }]] = await mysql.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${options.tableName} WHERE expires_at <= ?`, [Date.now()]);
        assert.equal(Number(n), 0);
      } finally {
        await scheduled.close();
      }
    });
  });
}
