import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { StorageCounters } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';
import { lockName } from '../../lib/storage/session.repository.js';

for (const adapter of ADAPTERS) {
  describe(`concurrent requests on one session (${adapter})`, () => {
    let running: RunningApp;
    let mysql: Connection;
    const options = realStoreOptions({ lockTimeout: 10, database: { type: 'mysql', url: testEnv().mysqlUrl, poolSize: 5 } });

    before(async () => {
      running = await startFixtureApp(adapter, options);
      mysql = await createConnection(testEnv().mysqlUrl);
    });
    after(async () => {
      await running?.close();
      await mysql?.end();
    });

    async function storedRow(sid: string): Promise<Record<string, unknown> | undefined> {
      const [rows] = await mysql.query<RowDataPacket[]>(`SELECT data FROM ${options.tableName} WHERE sid = ?`, [sid]);
      return rows[0] ? JSON.parse(rows[0].data) : undefined;
    }

    it('two parallel requests that set different keys both keep their key', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { base: 1 });
      const [slow, fast] = await Promise.all([client.fork().post('/set-slowly', { a: 'slow' }), client.fork().post('/set', { b: 'fast' })]);
      assert.equal(slow.status, 200);
      assert.equal(fast.status, 200);
      assert.deepEqual(await storedRow(claimsOf(client.token).sid), { base: 1, a: 'slow', b: 'fast' });
    });

    it('parallel writes of one session on one instance go out together: fewer UPDATEs than writes, and every key lands', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { base: 1 });
      const counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
      try {
        const usage = await counters.measure(() => Promise.all(Array.from({ length: 20 }, (_, i) => client.fork().post('/set', { [`k${i}`]: i }))));
        assert.deepEqual(usage.result.map((answer) => answer.status), Array(20).fill(200));
        const updates = usage.mysql.byCommand.update ?? 0;
        assert.ok(updates >= 1 && updates < 20, `${updates} UPDATEs for 20 writes`);
      } finally {
        await counters.close();
      }
      assert.deepEqual(await storedRow(claimsOf(client.token).sid), { base: 1, ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])) });
    });

    it('a write that cannot be stored, among parallel writes that go out together, fails alone', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { base: 1 });
      const answers = await Promise.all([
        ...Array.from({ length: 6 }, (_, i) => client.fork().post('/set', { [`k${i}`]: i })),
        client.fork().post('/store-bytes/2000000'),
        ...Array.from({ length: 6 }, (_, i) => client.fork().post('/set', { [`m${i}`]: i }))
      ]);
      assert.deepEqual(answers.map((answer) => answer.status), [...Array(6).fill(200), 413, ...Array(6).fill(200)]);
      const stored = await storedRow(claimsOf(client.token).sid);
      assert.equal(stored?.blob, undefined);
      assert.equal(Object.keys(stored ?? {}).length, 13);
    });

    it('two parallel first writes with the same fresh token produce one row holding both keys', async () => {
      const client = new SessionClient(running.url);
      await client.post('/claims', { visitor: true });
      const [one, two] = await Promise.all([client.fork().post('/set-slowly', { x: 1 }), client.fork().post('/set', { y: 2 })]);
      assert.equal(one.status, 200);
      assert.equal(two.status, 200);
      assert.deepEqual(await storedRow(claimsOf(client.token).sid), { x: 1, y: 2 });
    });

    it('a stale stored=false token never overwrites data stored since', async () => {
      const client = new SessionClient(running.url);
      await client.post('/claims', { visitor: true });
      const staleTab = client.fork();
      await client.post('/set', { cart: ['book'] });
      assert.equal(claimsOf(staleTab.token).stored, false);
      await staleTab.post('/set', { coupon: 'SAVE10' });
      assert.deepEqual(await storedRow(claimsOf(client.token).sid), { cart: ['book'], coupon: 'SAVE10' });
    });

    it('50 parallel locked increments on one session end at exactly 50', async () => {
      const client = new SessionClient(running.url);
      await client.post('/inc');
      const responses = await Promise.all(Array.from({ length: 49 }, () => client.fork().post('/inc')));
      assert.deepEqual(responses.map((r) => r.status).filter((s) => s !== 200), []);
      assert.deepEqual(
        responses.map((r) => r.body.n).sort((a, b) => a - b),
        Array.from({ length: 49 }, (_, i) => i + 2)
      );
      assert.deepEqual(await storedRow(claimsOf(client.token).sid), { n: 50 });
    });

    it('holds the named lock while a locked handler runs and frees it afterwards', async () => {
      const client = new SessionClient(running.url);
      await client.post('/inc');
      const name = lockName(claimsOf(client.token).sid);
      const slow = client.fork().post('/inc-after-pause');
      await new Promise((resolve) => setTimeout(resolve, 500));
      const [[during]] = await mysql.query<RowDataPacket[]>('SELECT IS_FREE_LOCK(?) AS free', [name]);
      assert.equal(Number(during.free), 0);
      assert.deepEqual((await slow).body, { n: 2 });
      const [[afterwards]] = await mysql.query<RowDataPacket[]>('SELECT IS_FREE_LOCK(?) AS free', [name]);
      assert.equal(Number(afterwards.free), 1);
    });

    it('a handler that throws after changing the session writes nothing and frees the lock', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { kept: true });
      const response = await client.post('/set-then-fail');
      assert.equal(response.status, 500);
      assert.deepEqual(await storedRow(claimsOf(client.token).sid), { kept: true });
      const [[row]] = await mysql.query<RowDataPacket[]>('SELECT IS_FREE_LOCK(?) AS free', [lockName(claimsOf(client.token).sid)]);
      assert.equal(Number(row.free), 1);
    });

    it('requests on other sessions are served while one session is busy with slow locked handlers', async () => {
      const busy = new SessionClient(running.url);
      await busy.post('/inc');
      let queuedDone = 0;
      const queued = Array.from({ length: 4 }, () => busy.fork().post('/inc-after-pause').then(() => queuedDone++));
      await new Promise((resolve) => setTimeout(resolve, 200));
      // The queued requests wait in memory, not on pooled connections: the pool of 5 stays free for others.
      const others = await Promise.all(Array.from({ length: 10 }, (_, i) => new SessionClient(running.url).post('/set', { i })));
      assert.deepEqual(others.map((r) => r.status), Array(10).fill(200));
      assert.ok(queuedDone < queued.length, 'other sessions had to wait for the busy session');
      await Promise.all(queued);
      assert.deepEqual((await busy.get('/me')).body, { data: { n: 5 } });
    });
  });

  describe(`lock timeout (${adapter})`, () => {
    let running: RunningApp;
    let mysql: Connection;
    const options = realStoreOptions({ lockTimeout: 0.5 });

    before(async () => {
      running = await startFixtureApp(adapter, options);
      mysql = await createConnection(testEnv().mysqlUrl);
    });
    after(async () => {
      await running?.close();
      await mysql?.end();
    });

    it('answers 503 with a JSON error naming the lock and a Retry-After header, and writes nothing', async () => {
      const client = new SessionClient(running.url);
      await client.post('/inc');
      const holder = client.fork().post('/inc-after-pause');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const blocked = await client.fork().post('/inc');
      assert.equal(blocked.status, 503);
      assert.equal(blocked.body.error, 'SessionLockTimeout');
      assert.match(blocked.body.message, /lock was not obtained within 0.5s/);
      assert.equal(blocked.headers.get('retry-after'), '1');
      assert.equal(blocked.issued, undefined);
      assert.deepEqual((await holder).body, { n: 2 });
      const [rows] = await mysql.query<RowDataPacket[]>(`SELECT data FROM ${options.tableName} WHERE sid = ?`, [claimsOf(client.token).sid]);
      assert.deepEqual(JSON.parse(rows[0].data), { n: 2 });
    });

    it('a locked handler reads the row as it is once it has the lock: a write committed while it waited is in what it reads', async () => {
      const client = new SessionClient(running.url);
      await client.post('/inc');
      const sid = claimsOf(client.token).sid;
      const other = await createConnection(testEnv().mysqlUrl);
      try {
        await other.query('SELECT GET_LOCK(?, 0)', [lockName(sid)]);
        const waiting = client.fork().post('/inc');
        await new Promise((resolve) => setTimeout(resolve, 100));
        await other.query(`UPDATE ${options.tableName} SET data = '{"n":41}', version = version + 1 WHERE sid = ?`, [sid]);
        await other.query('SELECT RELEASE_LOCK(?)', [lockName(sid)]);
        assert.deepEqual((await waiting).body, { n: 42 });
      } finally {
        await other.end();
      }
    });

    it('also times out against a lock held by another process, through MySQL GET_LOCK itself', async () => {
      const client = new SessionClient(running.url);
      await client.post('/inc');
      const other = await createConnection(testEnv().mysqlUrl);
      await other.query('SELECT GET_LOCK(?, 0)', [lockName(claimsOf(client.token).sid)]);
      const blocked = await client.post('/inc');
      assert.equal(blocked.status, 503);
      await other.end(); // the server frees a lock when its connection ends
      assert.deepEqual((await client.post('/inc')).body, { n: 2 });
    });
  });
}
