import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { EzSessionService, type EzSessionEvent } from '../../lib/index.js';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { cacheReads } from '../support/cache-reads.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { ManualClock, SECOND } from '../support/manual-clock.js';
import { pollUntil } from '../support/poll.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { StorageCounters } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';

// EzSession reads the time from a manual clock (the `clock` option), which stands still until a
// test moves it: lifetimes are checked to the millisecond, with no waiting. Each test starts on a
// whole second a day after the previous one, so token times (whole seconds) are exact and what
// an earlier test left has long expired. MariaDB and Redis are the real ones; Redis TTLs run on
// real time, so an entry Redis still holds must not be served once the clock has ended its session.
const IDLE = 1800;
const ABSOLUTE = 7200;
const SKEW = 30;
const CACHE_TTL = 600;
/** Real time that may pass between a cache write and reading its TTL back. */
const TTL_MARGIN = 5 * SECOND;

for (const adapter of ADAPTERS) {
  describe(`expiry (${adapter})`, () => {
    const clock = new ManualClock();
    const expired: EzSessionEvent[] = [];
    const options = realStoreOptions({
      idleTimeout: IDLE,
      absoluteTimeout: ABSOLUTE,
      clockSkew: SKEW,
      cacheTtl: CACHE_TTL,
      gcInterval: 0,
      clock,
      on: { expired: (event) => expired.push(event) }
    });
    let running: RunningApp;
    let mysql: Connection;
    let redis: Redis;
    let counters: StorageCounters;
    let start: number;

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
    beforeEach(() => {
      start = clock.nextDay();
      expired.length = 0;
    });

    /** Moves the clock to `ms` after the test's start. */
    const at = (ms: number) => clock.advanceTo(start + ms);
    const signedIn = async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { cart: ['book'] });
      return client;
    };
    const expiresAt = async (sid: string) => {
      const [rows] = await mysql.query<RowDataPacket[]>(`SELECT expires_at FROM ${options.tableName} WHERE sid = ?`, [sid]);
      return rows[0] ? Number(rows[0].expires_at) : undefined;
    };
    const cacheKey = (sid: string) => `${options.keyPrefix}${sid}`;
    const expiryReasons = (sid: string) => expired.filter((event) => event.sid === sid).map((event) => event.reason);

    it('a session is read up to the last millisecond of its idle window, and is gone from then on', async () => {
      const kept = await signedIn();
      const lapsed = await signedIn();
      const { sid } = claimsOf(lapsed.token);
      at(IDLE * SECOND - 1);
      assert.deepEqual((await kept.get('/me')).body, { data: { cart: ['book'] } });
      at(IDLE * SECOND);
      assert.deepEqual((await lapsed.get('/me')).body, { data: {} });
      assert.deepEqual(expiryReasons(sid), ['idle']);
    });

    it('a session the clock has ended is not served from Redis, though Redis still holds its entry', async () => {
      const client = await signedIn();
      const { sid } = claimsOf(client.token);
      at(IDLE * SECOND);
      assert.ok((await redis.pttl(cacheKey(sid))) > 0, 'Redis still holds the entry: its TTL runs on real time');
      assert.deepEqual((await client.get('/me')).body, { data: {} });
    });

    it('a row past its expiry is never read, even before GC deletes it', async () => {
      const client = await signedIn();
      const { sid } = claimsOf(client.token);
      at(IDLE * SECOND);
      await redis.del(cacheKey(sid));
      assert.equal(await expiresAt(sid), start + IDLE * SECOND, 'the row is still in MySQL');
      const response = await client.get('/me');
      assert.deepEqual(response.body, { data: {} });
      assert.notEqual(claimsOf(response.issued).sid, sid);
      assert.equal(claimsOf(response.issued).stored, false);
    });

    it('countActive counts a stored session until the millisecond it expires', async () => {
      const service = running.app.get(EzSessionService);
      await signedIn();
      await new SessionClient(running.url).post('/claims', { only: 'claims' });
      at(IDLE * SECOND - 1);
      assert.equal(await service.countActive(), 1);
      at(IDLE * SECOND);
      assert.equal(await service.countActive(), 0);
    });

    it('a token expires idleTimeout after it is issued, and its cookie lives as long', async () => {
      const response = await new SessionClient(running.url).post('/claims', { role: 'admin' });
      const { iat, exp } = claimsOf(response.issued);
      assert.deepEqual({ iat, exp }, { iat: start / SECOND, exp: start / SECOND + IDLE });
      assert.match(response.setCookie ?? '', new RegExp(`; Max-Age=${IDLE};`));
    });

    it('a token is accepted until clockSkew seconds past its exp, and refused from that second on', async () => {
      const client = new SessionClient(running.url);
      await client.post('/claims', { role: 'admin' });
      const { sid, exp } = claimsOf(client.token);
      clock.advanceTo((exp + SKEW) * SECOND - 1);
      assert.deepEqual((await client.fork().get('/claims')).body, { claims: { role: 'admin' } });
      clock.advance(1);
      assert.deepEqual((await client.fork().get('/claims')).body, { claims: {} });
      assert.deepEqual(expiryReasons(sid), ['token']);
    });

    it('activity within the first half of the idle window issues no token and writes nothing', async () => {
      const client = await signedIn();
      at((IDLE / 2) * SECOND - 1);
      const usage = await counters.measure(() => client.get('/me'));
      assert.equal(usage.result.issued, undefined);
      assert.deepEqual({ redis: usage.redis.sent, mysql: usage.mysql.queries }, { redis: cacheReads(1), mysql: 0 });
    });

    it('activity once half the idle window has passed re-issues the token, for a full idle window from then', async () => {
      const client = await signedIn();
      const first = claimsOf(client.token);
      at((IDLE / 2) * SECOND);
      const renewed = claimsOf((await client.get('/me')).issued);
      const renewedAt = start / SECOND + IDLE / 2;
      assert.deepEqual(
        { sid: renewed.sid, sct: renewed.sct, iat: renewed.iat, exp: renewed.exp },
        { sid: first.sid, sct: first.sct, iat: renewedAt, exp: renewedAt + IDLE }
      );
    });

    it('a session in use lives on under its re-issued token after its first token has expired', async () => {
      const client = await signedIn();
      const first = client.token;
      at((IDLE / 2) * SECOND);
      await client.get('/me');
      at((IDLE + SKEW) * SECOND);
      assert.deepEqual((await new SessionClient(running.url, 'cookie', first).get('/me')).body, { data: {} }, 'the first token is refused');
      assert.deepEqual((await client.get('/me')).body, { data: { cart: ['book'] } });
    });

    it('extends a stored row at most once per half window, each time with one UPDATE', async () => {
      const client = await signedIn();
      const { sid } = claimsOf(client.token);
      const updates = async () => (await counters.measure(() => client.get('/me'))).mysql.byCommand.update ?? 0;
      assert.equal(await expiresAt(sid), start + IDLE * SECOND);

      at((IDLE / 2) * SECOND);
      assert.equal(await updates(), 1);
      assert.equal(await expiresAt(sid), start + (IDLE / 2 + IDLE) * SECOND);
      assert.equal(await updates(), 0, 'no second UPDATE at the same moment');
      at(IDLE * SECOND - 1);
      assert.equal(await updates(), 0, 'no UPDATE within half a window of the last one');
      at(IDLE * SECOND);
      assert.equal(await updates(), 1);
      assert.equal(await expiresAt(sid), start + 2 * IDLE * SECOND);
    });

    it('writes that go out together set the expiry a single write would', async () => {
      const client = await signedIn();
      const { sid } = claimsOf(client.token);
      at(60 * SECOND);
      const usage = await counters.measure(() => Promise.all(Array.from({ length: 20 }, (_, i) => client.fork().post('/set', { [`k${i}`]: i }))));
      assert.ok((usage.mysql.byCommand.update ?? 0) < 20, 'some of the writes went out together');
      assert.equal(await expiresAt(sid), start + (60 + IDLE) * SECOND);
    });

    it('ends at the absolute timeout however active the session is', async () => {
      const client = await signedIn();
      const { sid, sct } = claimsOf(client.token);
      for (let t = 20 * 60; t < ABSOLUTE; t += 20 * 60) {
        at(t * SECOND);
        const response = await client.get('/me');
        assert.deepEqual(response.body, { data: { cart: ['book'] } }, `active at ${t} s`);
        if (response.issued) assert.ok(claimsOf(response.issued).exp <= sct + ABSOLUTE, 'no token outlives the absolute timeout');
      }
      assert.equal(claimsOf(client.token).exp, sct + ABSOLUTE, 'the last token ends with the session');
      at(ABSOLUTE * SECOND - 1);
      assert.deepEqual((await client.get('/me')).body, { data: { cart: ['book'] } });
      at(ABSOLUTE * SECOND);
      assert.deepEqual((await client.get('/me')).body, { data: {} });
      assert.deepEqual(expiryReasons(sid), ['absolute']);
    });

    it('a cache entry lives cacheTtl while its session has longer to live', async () => {
      const client = await signedIn();
      const ttl = await redis.pttl(cacheKey(claimsOf(client.token).sid));
      assert.ok(ttl <= CACHE_TTL * SECOND && ttl > CACHE_TTL * SECOND - TTL_MARGIN, `TTL ${ttl} ms`);
    });

    it('a cache entry ends a second before its session when the session has less than cacheTtl left', async () => {
      const client = await signedIn();
      const { sid } = claimsOf(client.token);
      // Writes keep the session going until it is within cacheTtl of its absolute timeout.
      for (const t of [1700, 3400, 5100, 6800]) {
        at(t * SECOND);
        await client.post('/set', { at: t });
      }
      assert.equal(await expiresAt(sid), start + ABSOLUTE * SECOND);
      const left = (ABSOLUTE - 6800) * SECOND - SECOND;
      const ttl = await redis.pttl(cacheKey(sid));
      assert.ok(ttl <= left && ttl > left - TTL_MARGIN, `TTL ${ttl} ms, ${left} ms expected`);
    });

    it('a destroyed session\'s token stays refused for as long as it could otherwise be accepted', async () => {
      const client = new SessionClient(running.url);
      await client.post('/claims', { role: 'admin' });
      const replay = client.fork();
      await client.post('/life/destroy');
      clock.advanceTo((claimsOf(replay.token).exp + SKEW) * SECOND - 1);
      assert.deepEqual((await replay.get('/claims')).body, { claims: {} });
    });
  });

  describe(`garbage collection (${adapter})`, () => {
    const clock = new ManualClock();
    const options = realStoreOptions({ idleTimeout: IDLE, clockSkew: SKEW, gcInterval: 0, gcBatchSize: 1000, clock });
    const table = options.tableName!;
    let running: RunningApp;
    let mysql: Connection;
    let counters: StorageCounters;
    let start: number;

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
    beforeEach(() => {
      start = clock.nextDay();
    });

    const at = (ms: number) => clock.advanceTo(start + ms);
    const gc = () => running.app.get(EzSessionService).gc();
    let inserted = 0;
    /** Rows of `count` sessions that expire at `expiresAt` (ms); their ids. */
    async function insertRows(count: number, expiresAt: number): Promise<string[]> {
      const sids = Array.from({ length: count }, () => `00000000-0000-4000-8000-${String(inserted++).padStart(12, '0')}`);
      const now = clock.now();
      await mysql.query(`INSERT INTO ${options.tableName} (sid, data, flash, created_at, updated_at, expires_at) VALUES ?`, [sids.map((sid) => [sid, '{}', '{}', now, now, expiresAt])]);
      return sids;
    }
    const present = async (table: string, sids: string[]) => {
      const [rows] = await mysql.query<RowDataPacket[]>(`SELECT sid FROM ${table} WHERE sid IN (?) ORDER BY sid`, [sids]);
      return rows.map((row) => String(row.sid));
    };

    it('deletes exactly the expired rows, in batches of gcBatchSize, and keeps live sessions', async () => {
      await gc(); // what earlier tests left
      const live = new SessionClient(running.url);
      await live.post('/set', { alive: true });
      await insertRows(2500, start + 60 * SECOND);
      at(60 * SECOND);
      const usage = await counters.measure(gc);
      assert.equal(usage.result, 2500);
      assert.ok(usage.mysql.byCommand.delete >= 3, `batched into ${usage.mysql.byCommand.delete} DELETE statements`);
      const [[{ n }]] = await mysql.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${options.tableName}`);
      assert.equal(Number(n), 1);
      assert.deepEqual((await live.get('/me')).body, { data: { alive: true } });
    });

    it('deletes a row from the millisecond it expires, not before', async () => {
      const [due] = await insertRows(1, start + 60 * SECOND);
      const [later] = await insertRows(1, start + 60 * SECOND + 1);
      at(60 * SECOND - 1);
      await gc();
      assert.deepEqual(await present(table, [due, later]), [due, later]);
      at(60 * SECOND);
      await gc();
      assert.deepEqual(await present(table, [due, later]), [later]);
    });

    it('keeps a tombstone while a token naming its id can be presented, and deletes it after', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { doomed: true });
      const { sid } = claimsOf(client.token);
      await client.post('/life/destroy');
      const tombstones = `${table}_revoked`;
      at((IDLE + SKEW) * SECOND - 1);
      await gc();
      assert.deepEqual(await present(tombstones, [sid]), [sid]);
      at((IDLE + SKEW) * SECOND);
      await gc();
      assert.deepEqual(await present(tombstones, [sid]), []);
    });

    it('runs on its own schedule', async () => {
      const scheduled = await startFixtureApp(adapter, { ...options, gcInterval: 0.1 });
      try {
        await insertRows(10, clock.now() - 1);
        const expiredRows = async () => {
          const [[{ n }]] = await mysql.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${options.tableName} WHERE expires_at <= ?`, [clock.now()]);
          return Number(n);
        };
        await pollUntil('the scheduled GC to delete the expired rows', async () => ((await expiredRows()) === 0 ? true : undefined), { timeoutMs: 3000, intervalMs: 20 });
      } finally {
        await scheduled.close();
      }
    });
  });
}
