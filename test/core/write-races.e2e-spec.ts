import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { decodeCached } from '../../lib/cache/session-cache.js';
import { EzSessionService } from '../../lib/index.js';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { testEnv } from '../support/test-env.js';

// Writes no longer take the session's lock: these are the guarantees the lock used to give,
// checked where they are hardest to keep, with writers on two app instances of one store.
for (const adapter of ADAPTERS) {
  describe(`writes racing each other on two instances (${adapter})`, () => {
    const options = realStoreOptions();
    let first: RunningApp;
    let second: RunningApp;
    let mysql: Connection;
    let redis: Redis;

    before(async () => {
      first = await startFixtureApp(adapter, options);
      second = await startFixtureApp(adapter, options);
      mysql = await createConnection(testEnv().mysqlUrl);
      redis = new Redis(testEnv().redisUrl);
    });
    after(async () => {
      await first?.close();
      await second?.close();
      await mysql?.end();
      redis?.disconnect();
    });

    const row = async (sid: string) => {
      const [rows] = await mysql.query<RowDataPacket[]>(`SELECT data, version FROM ${options.tableName} WHERE sid = ?`, [sid]);
      return rows[0] as { data: string; version: string } | undefined;
    };
    /** A client of the same session on each instance. */
    async function sharedSession(): Promise<[SessionClient, SessionClient]> {
      const one = new SessionClient(first.url);
      await one.post('/set', { seed: true });
      return [one, new SessionClient(second.url, 'cookie', one.token)];
    }

    it('parallel writers of different keys on both instances all keep their key', async () => {
      const [one, two] = await sharedSession();
      const writes = Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? one : two).fork().post('/set', { [`k${i}`]: i }));
      assert.deepEqual((await Promise.all(writes)).map((response) => response.status), Array(30).fill(200));
      const expected = Object.fromEntries([['seed', true], ...Array.from({ length: 30 }, (_, i) => [`k${i}`, i])]);
      assert.deepEqual((await one.get('/me')).body.data, expected);
      assert.deepEqual((await two.get('/me')).body.data, expected);
    });

    it('parallel writers of one key on both instances: all are acknowledged, and the value left is one of theirs, the same through both', async () => {
      const [one, two] = await sharedSession();
      const before = Number((await row(claimsOf(one.token).sid))!.version);
      const writes = Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? one : two).fork().post('/set', { shared: i }));
      assert.deepEqual((await Promise.all(writes)).map((response) => response.status), Array(30).fill(200));
      const stored = (await row(claimsOf(one.token).sid))!;
      // Writes that queued on one instance went out together: between 2 statements (one per instance) and 30.
      const statements = Number(stored.version) - before;
      assert.ok(statements >= 2 && statements <= 30, `${statements} writes of the row`);
      const shared = JSON.parse(stored.data).shared;
      assert.ok(Number.isInteger(shared) && shared >= 0 && shared < 30);
      assert.deepEqual((await one.get('/me')).body.data.shared, shared);
      assert.deepEqual((await two.get('/me')).body.data.shared, shared);
    });

    it('a write racing a destroy on the other instance never brings the old id back', async () => {
      for (let round = 0; round < 5; round++) {
        const [one, two] = await sharedSession();
        const sid = claimsOf(one.token).sid;
        const slow = one.fork().post('/set-slowly', { late: round });
        await sleep(30);
        await two.post('/life/destroy');
        const answer = await slow;
        assert.equal(answer.status, 200);
        await sleep(50);
        assert.equal(await row(sid), undefined, `round ${round}: the destroyed id has a row again`);
        // The late write went to a new session, whose token its answer carries.
        if (answer.issued) assert.notEqual(claimsOf(answer.issued).sid, sid);
      }
    });

    it('a write racing a regenerate on the other instance is kept, under the new id or in a new session, and the old id stays gone', async () => {
      for (let round = 0; round < 5; round++) {
        const [one, two] = await sharedSession();
        const sid = claimsOf(one.token).sid;
        const slow = one.fork().post('/set-slowly', { late: round });
        await sleep(30);
        await two.post('/life/regenerate');
        const answer = await slow;
        assert.equal(answer.status, 200);
        assert.equal(await row(sid), undefined, `round ${round}: the old id has a row again`);
        const regenerated = (await two.get('/me')).body.data;
        const keptThere = regenerated.late === round;
        const keptInNewSession = answer.issued !== undefined && (await new SessionClient(first.url, 'cookie', answer.issued).get('/me')).body.data.late === round;
        assert.ok(keptThere || keptInNewSession, `round ${round}: the acknowledged write was lost`);
      }
    });

    it('a first write with an id revoked on another instance, before that instance heard of it, starts a new session instead', async () => {
      const client = new SessionClient(first.url);
      await client.post('/claims', { visitor: true });
      const sid = claimsOf(client.token).sid;
      // The tombstone as another instance's revoke writes it, with its announcement not received here.
      await mysql.query(`INSERT INTO ${options.tableName}_revoked (sid, revoked_at, expires_at) VALUES (?, ?, ?)`, [sid, Date.now(), Date.now() + 60_000]);
      const answer = await client.post('/set', { after: 'revoke' });
      assert.equal(answer.status, 200);
      assert.notEqual(claimsOf(answer.issued).sid, sid);
      assert.equal(await row(sid), undefined);
      assert.deepEqual((await client.get('/me')).body.data, { after: 'revoke' });
    });

    it('a stale stored=false token used on the other instance never overwrites what was stored', async () => {
      const one = new SessionClient(first.url);
      await one.post('/claims', { visitor: true });
      const stale = new SessionClient(second.url, 'cookie', one.token);
      await one.post('/set', { first: 1 });
      await stale.post('/set', { second: 2 });
      assert.deepEqual((await one.get('/me')).body.data, { first: 1, second: 2 });
    });

    // The race the lease closes: a reader that missed reads the row, a write lands and is cached,
    // the entry is evicted, and the reader's refill of the older row would stay until the next write.
    // The second instance reads MariaDB through a proxy that holds its answers back, which pins
    // that interleaving down exactly.
    it('a refill of a row read before a newer write, landing after the entry was evicted, is refused: the next read returns the newer write', async () => {
      const proxy = new TcpProxy({ host: '127.0.0.1', port: Number(new URL(testEnv().mysqlUrl).port) });
      await proxy.start();
      const proxied = new URL(testEnv().mysqlUrl);
      proxied.port = String(proxy.port);
      const slowReader = await startFixtureApp(adapter, { ...options, database: { type: 'mysql', url: proxied.toString() } });
      try {
        const writer = new SessionClient(first.url);
        await writer.post('/set', { n: 1 });
        const key = `${options.keyPrefix}${claimsOf(writer.token).sid}`;
        // One read that misses first, so the reader's connection has its SELECT prepared: held
        // back below is that SELECT's answer, not the handshake of a prepared statement.
        await redis.del(key);
        await new SessionClient(slowReader.url, 'cookie', writer.token).get('/me');
        await redis.del(key);
        proxy.pause('from-target');
        const early = new SessionClient(slowReader.url, 'cookie', writer.token).get('/me'); // misses, its SELECT answer is held
        await sleep(100);
        assert.equal((await writer.post('/set', { n: 2 })).status, 200); // committed and cached
        await redis.del(key); // evicted
        proxy.resume('from-target');
        assert.deepEqual((await early).body.data, { n: 1 }); // it began before n = 2 was acknowledged
        assert.deepEqual((await writer.get('/me')).body.data, { n: 2 });
        assert.deepEqual((await new SessionClient(slowReader.url, 'cookie', writer.token).get('/me')).body.data, { n: 2 });
      } finally {
        await slowReader.close();
        await proxy.stop();
      }
    });

    it("a cache write of an older version that reaches Redis after a newer one is refused: the cache keeps the newer write", async () => {
      const proxy = new TcpProxy({ host: '127.0.0.1', port: Number(new URL(testEnv().redisUrl).port) });
      await proxy.start();
      const lateWriter = await startFixtureApp(adapter, { ...options, redis: `redis://127.0.0.1:${proxy.port}`, redisCommandTimeout: 200 });
      try {
        const [one] = await sharedSession();
        const key = `${options.keyPrefix}${claimsOf(one.token).sid}`;
        const late = new SessionClient(lateWriter.url, 'cookie', one.token);
        assert.equal((await late.get('/me')).status, 200); // cached and read through the proxy once
        proxy.pause('to-target');
        // Committed in MySQL; its cache write waits in the proxy, and the request stops waiting for it.
        assert.equal((await late.post('/set', { n: 'older' })).status, 200);
        assert.equal((await one.post('/set', { n: 'newer' })).status, 200);
        proxy.resume('to-target');
        await sleep(100);
        const cached = decodeCached(await redis.get(key));
        assert.equal(JSON.parse(cached!.data).n, 'newer');
        assert.deepEqual((await one.get('/me')).body.data.n, 'newer');
      } finally {
        await lateWriter.close();
        await proxy.stop();
      }
    });

    it('readers never get data older than the last write acknowledged before they began, while the cache entry keeps vanishing', async () => {
      const WRITES = 200;
      const [writer, reader] = await sharedSession();
      const key = `${options.keyPrefix}${claimsOf(writer.token).sid}`;
      let acknowledged = 0;
      let stop = false;
      const evictions = (async () => {
        while (!stop) {
          await redis.del(key);
          await sleep(2);
        }
      })();
      const writes = (async () => {
        for (let n = 1; n <= WRITES; n++) {
          assert.equal((await writer.post('/set', { n })).status, 200);
          acknowledged = n;
        }
      })();
      const stale: string[] = [];
      let reads = 0;
      const readers = Array.from({ length: 6 }, async () => {
        while (acknowledged < WRITES) {
          const floor = acknowledged;
          const seen = (await reader.fork().get('/me')).body.data.n ?? 0;
          reads++;
          if (seen < floor) stale.push(`read ${seen} after ${floor} was acknowledged`);
        }
      });
      await writes;
      await Promise.all(readers);
      stop = true;
      await evictions;
      assert.ok(reads > WRITES, `only ${reads} reads`);
      assert.deepEqual(stale, []);
    });

    it('a write that lost to the other instance is tried once more on the fresh row, and counted as a retry', async () => {
      const [one, two] = await sharedSession();
      const service = first.app.get(EzSessionService);
      const before = service.metrics();
      const slow = one.fork().post('/set-slowly', { mine: 'slow' }); // reads the row, then waits 100 ms
      await sleep(30);
      await two.post('/set', { theirs: 'fast' });
      assert.equal((await slow).status, 200);
      const after = service.metrics();
      assert.deepEqual({ writes: after.writes - before.writes, retries: after.writeRetries - before.writeRetries }, { writes: 1, retries: 1 });
      assert.deepEqual((await one.get('/me')).body.data, { seed: true, mine: 'slow', theirs: 'fast' });
    });
  });
}
