import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADAPTERS, type RunningApp } from '../fixtures/fixture-app.js';
import { MariaDbServer } from '../support/mariadb-server.js';
import { testEnv } from '../support/test-env.js';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { startReliabilityApp } from './reliability-app.js';
import { BoundedClient, closeApp, MySqlProbe, RedisProbe, sidOf, storeOptions } from './reliability-support.js';

// Faults on a MariaDB of this spec's own (killed, restarted); Redis is the shared one, under a key
// prefix of this spec's own. MySQL is the truth: while it is down a write fails at once with a 503
// and changes nothing anywhere, and the app recovers when MySQL is back, without a restart.

const LOCK_TIMEOUT_S = 5;
const mariadb = new MariaDbServer();
let redis: RedisProbe;

before(async () => {
  await mariadb.start();
  redis = new RedisProbe(testEnv().redisUrl);
});
after(async () => {
  redis?.close();
  await mariadb.stop();
});

for (const adapter of ADAPTERS) {
  describe(`MySQL outage (${adapter})`, () => {
    let running: RunningApp;
    let options: ReturnType<typeof storeOptions>;

    before(async () => {
      options = storeOptions(mariadb.url, testEnv().redisUrl, { lockTimeout: LOCK_TIMEOUT_S });
      running = await startReliabilityApp(adapter, options);
    });
    after(async () => {
      if (!mariadb.isRunning) await mariadb.restart();
      await closeApp(running);
    });
    afterEach(async () => {
      if (!mariadb.isRunning) await mariadb.restart();
    });

    /** Every request must answer within the lock timeout: failing fast, never hanging on a dead server. */
    function newClient(): BoundedClient {
      return new BoundedClient(running.url, LOCK_TIMEOUT_S * 1000);
    }

    async function storedClient(data: Record<string, unknown>): Promise<BoundedClient> {
      const client = newClient();
      assert.equal((await client.post('/set', data)).status, 200);
      assert.deepEqual((await client.get('/me')).body, { data });
      return client;
    }

    async function storedInMySql(sid: string): Promise<Record<string, unknown> | undefined> {
      const probe = await MySqlProbe.open(mariadb.url, options.tableName);
      try {
        return await probe.data(sid);
      } finally {
        await probe.close();
      }
    }

    function assertStoreUnavailable(response: { status: number; body: any; issued: string | undefined; setCookie: string | undefined }): void {
      assert.equal(response.status, 503);
      assert.equal(response.body.error, 'SessionStoreUnavailable');
      assert.equal(response.issued, undefined, 'no new token');
      assert.equal(response.setCookie, undefined, 'no cookie');
    }

    it('a write while MySQL is down answers 503 SessionStoreUnavailable, with no new token', async () => {
      const client = await storedClient({ v: 1 });
      await mariadb.kill();
      assertStoreUnavailable(await client.post('/set', { v: 2 }));
    });

    it('a first visit that writes while MySQL is down gets a 503 and no cookie', async () => {
      await mariadb.kill();
      assertStoreUnavailable(await newClient().post('/set', { fresh: true }));
    });

    it('a locked increment while MySQL is down answers 503 SessionStoreUnavailable', async () => {
      const client = newClient();
      assert.deepEqual((await client.post('/inc')).body, { n: 1 });
      await mariadb.kill();
      assertStoreUnavailable(await client.post('/inc'));
    });

    it('a write refused while MySQL was down left nothing behind, in MySQL or in Redis', async () => {
      const client = await storedClient({ v: 1 });
      await mariadb.kill();
      assert.equal((await client.post('/set', { v: 2, extra: true })).status, 503);
      assert.equal((await client.post('/inc')).status, 503);
      await mariadb.restart();
      assert.deepEqual(await storedInMySql(sidOf(client.token)), { v: 1 });
      assert.deepEqual(await redis.cachedData(options.keyPrefix, sidOf(client.token)), { v: 1 });
      assert.deepEqual((await client.get('/me')).body, { data: { v: 1 } });
    });

    it('a cached session is still read, with its data, while MySQL is down', async () => {
      const client = await storedClient({ cart: ['book'] });
      await mariadb.kill();
      const response = await client.get('/me');
      assert.equal(response.status, 200);
      assert.deepEqual(response.body, { data: { cart: ['book'] } });
    });

    it('a stored session missing from the cache answers 503 while MySQL is down, never an empty session', async () => {
      const client = await storedClient({ cart: ['book'] });
      await redis.client.del(options.keyPrefix + sidOf(client.token));
      const token = client.token;
      await mariadb.kill();
      assertStoreUnavailable(await client.get('/me'));
      await mariadb.restart();
      assert.equal(client.token, token, 'the client kept its token');
      assert.deepEqual((await client.get('/me')).body, { data: { cart: ['book'] } });
    });

    it('requests that use only claims, or no session at all, are served as usual while MySQL is down', async () => {
      const client = newClient();
      assert.equal((await client.post('/claims', { theme: 'dark' })).status, 200);
      await mariadb.kill();
      assert.deepEqual((await client.get('/plain')).body, { ok: true });
      assert.deepEqual((await client.get('/claims')).body, { claims: { theme: 'dark' } });
      const changed = await client.post('/claims', { lang: 'fr' });
      assert.equal(changed.status, 200);
      assert.ok(changed.issued, 'claims changes still get a new token');
      assert.deepEqual((await client.get('/claims')).body, { claims: { theme: 'dark', lang: 'fr' } });
    });

    it('after MySQL restarts, the same app instance writes and reads again', async () => {
      const client = await storedClient({ v: 1 });
      await mariadb.kill();
      assert.equal((await client.post('/set', { v: 2 })).status, 503);
      await mariadb.restart();
      const write = await client.post('/set', { v: 3 });
      assert.equal(write.status, 200, `first write after the restart: ${JSON.stringify(write.body)}`);
      assert.deepEqual(await storedInMySql(sidOf(client.token)), { v: 3 });
      assert.deepEqual((await client.post('/inc')).body, { n: 1 });
      const fresh = newClient();
      assert.equal((await fresh.post('/set', { newcomer: true })).status, 200);
      assert.deepEqual(await storedInMySql(sidOf(fresh.token)), { newcomer: true });
    });

    it('after MySQL restarts, a stored read that misses the cache is served from MySQL again', async () => {
      const client = await storedClient({ v: 1 });
      await mariadb.kill();
      await mariadb.restart();
      await redis.client.del(options.keyPrefix + sidOf(client.token));
      const response = await client.get('/me');
      assert.equal(response.status, 200, JSON.stringify(response.body));
      assert.deepEqual(response.body, { data: { v: 1 } });
    });

    it('MySQL dying while a locked handler holds the session: that request answers 503 and writes nothing, the next one succeeds', async () => {
      const client = newClient();
      assert.deepEqual((await client.post('/inc')).body, { n: 1 });
      const holding = client.fork().post('/r/hold/800');
      await sleep(300);
      await mariadb.kill();
      const held = await holding;
      assert.equal(held.status, 503);
      assert.equal(held.body.error, 'SessionStoreUnavailable');
      await mariadb.restart();
      assert.deepEqual(await storedInMySql(sidOf(client.token)), { n: 1 });
      assert.deepEqual((await client.post('/inc')).body, { n: 2 });
    });
  });
}

for (const adapter of ADAPTERS) {
  describe(`store failures are told generically and logged (${adapter})`, () => {
    let running: RunningApp;
    let options: ReturnType<typeof storeOptions>;

    before(async () => {
      // No timers of its own (resync, GC) that would log too: the lines counted are the requests'.
      options = storeOptions(mariadb.url, testEnv().redisUrl, { lockTimeout: LOCK_TIMEOUT_S, revocationSyncInterval: 0, gcInterval: 0 });
      running = await startReliabilityApp(adapter, options);
    });
    after(async () => {
      if (!mariadb.isRunning) await mariadb.restart();
      await closeApp(running);
    });

    it('with MySQL down, 60 failing requests answer a generic 503 with a stable code; the log has the driver detail in a bounded number of lines, and no full session id', async () => {
      const clients: BoundedClient[] = [];
      for (let i = 0; i < 3; i++) {
        const client = new BoundedClient(running.url, LOCK_TIMEOUT_S * 1000);
        assert.equal((await client.post('/set', { v: i })).status, 200);
        await redis.client.del(options.keyPrefix + sidOf(client.token));
        clients.push(client);
      }
      const sids = clients.map((client) => sidOf(client.token));
      const { port } = new URL(mariadb.url);
      await mariadb.kill();
      const logged = running.logs.length;
      const bodies: string[] = [];
      for (let i = 0; i < 20; i++) {
        for (const [index, answer] of [
          await clients[0].post('/set', { v: 100 + i }),
          await clients[1].post('/inc'),
          // A stored session whose cache entry is gone: its read reaches MySQL.
          await clients[2].get('/me')
        ].entries()) {
          assert.equal(answer.status, 503, `request ${i}.${index}`);
          assert.deepEqual(answer.body, {
            statusCode: 503,
            error: 'SessionStoreUnavailable',
            code: 'SESSION_STORE_UNAVAILABLE',
            message: 'The session store is unavailable. Nothing was written; retry the request.'
          });
          bodies.push(JSON.stringify(answer.body));
        }
      }
      for (const body of bodies) assert.doesNotMatch(body, new RegExp(`ECONNREFUSED|127\\.0\\.0\\.1|${port}|${options.tableName}|collat`, 'i'));

      const lines = running.logs.slice(logged).filter((line) => line.includes('Session store unavailable'));
      // One line per kind of failure (the driver's code) per 10 s: the first at once, the rest counted.
      const kinds = new Set(lines.map((line) => /unavailable \(([^)]+)\)/.exec(line)?.[1]));
      assert.ok(lines.length >= 1, 'the failure is logged');
      assert.ok(lines.length <= kinds.size * 2, `60 failures gave ${lines.length} log lines:\n${lines.join('\n')}`);
      assert.ok(lines.every((line) => line.startsWith('[EzSession] ')), lines.join('\n'));
      assert.ok(lines.some((line) => /ECONNREFUSED|connect|Connection lost|closed/i.test(line)), `the driver's detail is logged:\n${lines.join('\n')}`);
      assert.ok(lines.some((line) => sids.some((sid) => line.includes(`session ${sid.slice(0, 8)}…`))), `a short id prefix names the session:\n${lines.join('\n')}`);
      for (const line of running.logs) for (const sid of sids) assert.ok(!line.includes(sid), `a full session id was logged: ${line}`);
    });
  });
}

/** The pid of this spec's own mariadbd, read from the pid file it reports. */
async function mariadbPid(): Promise<number> {
  const connection = await createConnection(mariadb.url);
  try {
    const [[{ file }]] = await connection.query<RowDataPacket[]>('SELECT @@pid_file AS file');
    return Number((await readFile(String(file), 'utf8')).trim());
  } finally {
    await connection.end();
  }
}

for (const adapter of ADAPTERS) {
  describe(`MySQL stops answering (${adapter})`, () => {
    // A frozen server (SIGSTOP) keeps its connections open and answers nothing: what a network
    // partition or a stuck server looks like from the app. Nothing fails fast by itself here.
    const lockTimeout = 1;
    let running: RunningApp;
    let options: ReturnType<typeof storeOptions>;
    let pid: number;
    let frozen = false;

    const freeze = () => {
      process.kill(pid, 'SIGSTOP');
      frozen = true;
    };
    const thaw = () => {
      if (frozen) process.kill(pid, 'SIGCONT');
      frozen = false;
    };

    before(async () => {
      options = storeOptions(mariadb.url, testEnv().redisUrl, { lockTimeout });
      running = await startReliabilityApp(adapter, options);
      pid = await mariadbPid();
    });
    after(async () => {
      thaw();
      await closeApp(running);
    });
    afterEach(thaw);

    /** Bound: three lock timeouts, for a request that may wait for its lock and then write. */
    function newClient(): BoundedClient {
      return new BoundedClient(running.url, 3 * lockTimeout * 1000);
    }

    it('a write answers (503) within three lock timeouts instead of hanging', async () => {
      const client = newClient();
      assert.equal((await client.post('/set', { v: 1 })).status, 200);
      freeze();
      const outcome = await client.settle(client.post('/set', { v: 2 }));
      thaw();
      if (outcome === 'hung') assert.fail(`the write did not answer within ${3 * lockTimeout}s while MySQL was frozen`);
      assert.equal(outcome.status, 503);
      assert.equal(outcome.issued, undefined);
    });

    it('a locked increment answers (503) within three lock timeouts instead of hanging', async () => {
      const client = newClient();
      assert.equal((await client.post('/inc')).status, 200);
      freeze();
      const outcome = await client.settle(client.post('/inc'));
      thaw();
      if (outcome === 'hung') assert.fail(`the locked request did not answer within ${3 * lockTimeout}s while MySQL was frozen`);
      assert.equal(outcome.status, 503);
    });

    it('a cached session is still read while MySQL is frozen', async () => {
      const client = newClient();
      assert.equal((await client.post('/set', { v: 1 })).status, 200);
      freeze();
      const outcome = await client.settle(client.get('/me'));
      thaw();
      if (outcome === 'hung') assert.fail('a cached read waited on the frozen MySQL');
      assert.deepEqual(outcome.body, { data: { v: 1 } });
    });

    it('once MySQL answers again, writes succeed and nothing from the frozen period is lost', async () => {
      const client = newClient();
      assert.equal((await client.post('/set', { v: 1 })).status, 200);
      freeze();
      const during = await client.settle(client.post('/set', { v: 2 }));
      thaw();
      // Give any request the freeze held up time to finish, then check what is stored.
      await sleep(500);
      const after = await client.post('/set', { w: 3 });
      assert.equal(after.status, 200);
      const probe = await MySqlProbe.open(mariadb.url, options.tableName);
      try {
        const stored = await probe.data(sidOf(client.token));
        const acknowledged = during !== 'hung' && during.status === 200;
        if (acknowledged) assert.deepEqual(stored, { v: 2, w: 3 });
        else assert.ok(stored?.v === 1 || stored?.v === 2, `v is ${stored?.v}`);
        assert.equal(stored?.w, 3);
      } finally {
        await probe.close();
      }
      assert.deepEqual((await client.get('/me')).body.data.w, 3);
    });
  });
}
