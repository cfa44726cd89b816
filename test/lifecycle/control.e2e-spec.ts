import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { EzSessionService } from '../../lib/index.js';
import { RevocationRegistry } from '../../lib/revocation/revocation.registry.js';
import { ADAPTERS, startFixtureApp, TEST_SECRET, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { LOOPBACK } from '../support/endpoint.js';
import { pollUntil } from '../support/poll.js';
import { StorageCounters } from '../support/storage-counters.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { testEnv } from '../support/test-env.js';

for (const adapter of ADAPTERS) {
  describe(`regenerate, destroy and revoke (${adapter})`, () => {
    let running: RunningApp;
    let mysql: Connection;
    let redis: Redis;
    let counters: StorageCounters;
    const options = realStoreOptions({ userId: { session: 'userId' } });

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

    const rowExists = async (sid: string) => {
      const [rows] = await mysql.query<RowDataPacket[]>(`SELECT 1 FROM ${options.tableName} WHERE sid = ?`, [sid]);
      return rows.length === 1;
    };
    const service = () => running.app.get(EzSessionService);

    it('regenerate gives a new id that keeps the data and claims, and the old token stops working', async () => {
      const client = new SessionClient(running.url);
      await client.post('/login');
      const old = client.fork();
      const response = await client.post('/life/regenerate');
      assert.notEqual(claimsOf(response.issued).sid, claimsOf(old.token).sid);
      assert.deepEqual((await client.get('/me')).body, { data: { userId: 42 } });
      assert.deepEqual((await client.get('/claims')).body, { claims: { role: 'admin' } });
      assert.deepEqual((await old.get('/me')).body, { data: {} });
      assert.deepEqual((await old.get('/claims')).body, { claims: {} });
      assert.equal(await rowExists(claimsOf(old.token).sid), false);
    });

    it('login on a pre-login token leaves the attacker who planted it with nothing (fixation)', async () => {
      const victim = new SessionClient(running.url);
      await victim.post('/claims', { visitor: true });
      const attacker = victim.fork();
      await victim.post('/life/login', { userId: 9 });
      assert.deepEqual((await victim.get('/me')).body, { data: { userId: 9 } });
      assert.deepEqual((await attacker.get('/me')).body, { data: {} });
      assert.deepEqual((await attacker.post('/set', { planted: true })).status, 200);
      assert.deepEqual((await victim.get('/me')).body, { data: { userId: 9 } });
    });

    /** A pre-login session as an attacker would prepare it, and a copy of its token for the attacker. */
    async function plantedSession(): Promise<{ victim: SessionClient; attacker: SessionClient }> {
      const victim = new SessionClient(running.url);
      await victim.post('/set', { returnTo: 'https://evil.example/', cart: ['apple'], userId: 'mallory' });
      await victim.post('/claims', { theme: 'dark', admin: true });
      await victim.post('/life/flash', { notice: 'Welcome', phish: 'Call +1 555 0100 now' });
      return { victim, attacker: victim.fork() };
    }

    it("login with regenerate(ctx, { keep }) keeps only the named data keys, claims (jwt.x) and flash messages (flash.x): nothing else an attacker planted survives", async () => {
      const { victim, attacker } = await plantedSession();
      const userId = `victim-${Math.random()}`;
      const login = await victim.post('/life/login-keeping', { keep: ['cart', 'jwt.theme', 'flash.notice'], userId });
      assert.deepEqual(login.body.after, { data: { cart: ['apple'] }, claims: { theme: 'dark' }, flash: { notice: 'Welcome', phish: null } });
      assert.deepEqual((await victim.get('/me')).body, { data: { cart: ['apple'], userId } });
      assert.deepEqual((await victim.get('/claims')).body, { claims: { theme: 'dark', role: 'member' } });
      assert.deepEqual((await victim.get('/life/flash')).body, { notice: 'Welcome' });
      // The row written at the move had no user id (userId was not kept); the login's own write set it.
      assert.deepEqual(await service().listForUser('mallory'), []);
      assert.deepEqual((await service().listForUser(userId)).map((s) => s.sid), [claimsOf(victim.token).sid]);
      assert.deepEqual((await attacker.get('/me')).body, { data: {} });
    });

    it('regenerate(ctx, { keep: [] }) starts from an empty session; without keep everything is kept, as before', async () => {
      const emptied = (await plantedSession()).victim;
      const login = await emptied.post('/life/login-keeping', { keep: [], userId: 'u1' });
      assert.deepEqual(login.body.after, { data: {}, claims: {}, flash: { notice: null, phish: null } });
      assert.deepEqual((await emptied.get('/me')).body, { data: { userId: 'u1' } });
      assert.deepEqual((await emptied.get('/claims')).body, { claims: { role: 'member' } });
      assert.deepEqual((await emptied.get('/life/flash')).body, {});

      const kept = (await plantedSession()).victim;
      const all = await kept.post('/life/login-keeping', { userId: 'u2' });
      assert.deepEqual(all.body.after, {
        data: { returnTo: 'https://evil.example/', cart: ['apple'], userId: 'mallory' },
        claims: { theme: 'dark', admin: true },
        flash: { notice: 'Welcome', phish: 'Call +1 555 0100 now' }
      });
      assert.deepEqual((await kept.get('/me')).body, { data: { returnTo: 'https://evil.example/', cart: ['apple'], userId: 'u2' } });
    });

    it('regenerate from a handler that takes only @Req() sends the new token and keeps the data', async () => {
      const client = new SessionClient(running.url);
      await client.post('/login');
      const old = client.fork();
      const response = await client.post('/life/plain-regenerate');
      assert.equal(response.status, 200);
      assert.notEqual(claimsOf(response.issued).sid, claimsOf(old.token).sid);
      assert.match(String(response.setCookie), /^ezsession=[^;]+; Max-Age=\d+;/);
      assert.deepEqual((await client.get('/me')).body, { data: { userId: 42 } });
      assert.deepEqual((await old.get('/me')).body, { data: {} });
    });

    it('destroy from a handler that takes only @Req() clears the cookie and ends the session', async () => {
      const client = new SessionClient(running.url);
      await client.post('/login');
      const old = client.fork();
      const response = await client.post('/life/plain-logout');
      assert.equal(response.status, 200);
      assert.match(String(response.setCookie), /^ezsession=; Max-Age=0;/);
      assert.equal(response.issued, undefined);
      assert.equal(await rowExists(claimsOf(old.token).sid), false);
      assert.deepEqual((await old.get('/me')).body, { data: {} });
    });

    it('regenerate under a held lock keeps the locked change', async () => {
      const client = new SessionClient(running.url);
      await client.post('/inc');
      const response = await client.post('/life/locked-regenerate');
      assert.deepEqual(response.body, { n: 2 });
      assert.deepEqual((await client.get('/me')).body, { data: { n: 2 } });
    });

    it('destroy deletes the row and the cache entry and clears the cookie with the same attributes', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 1 });
      const { sid } = claimsOf(client.token);
      const response = await client.post('/life/destroy');
      assert.equal(response.setCookie, 'ezsession=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax');
      assert.equal(response.headers.get('cache-control'), 'no-store');
      assert.equal(await rowExists(sid), false);
      assert.equal(await redis.exists(`${options.keyPrefix}${sid}`), 0);
      assert.deepEqual((await client.get('/me')).body, { data: {} });
    });

    it('a destroyed claims-only token is refused with no storage I/O', async () => {
      const client = new SessionClient(running.url);
      await client.post('/claims', { role: 'admin' });
      const replay = client.fork();
      await client.post('/life/destroy');
      const usage = await counters.measure(() => replay.get('/claims'));
      assert.deepEqual(usage.result.body, { claims: {} });
      assert.deepEqual({ redis: usage.redis.total, mysql: usage.mysql.queries }, { redis: 0, mysql: 0 });
    });

    it('a flash message set after destroy reaches the next request', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 1 });
      await client.post('/life/logout');
      assert.deepEqual((await client.get('/flash/notice')).body, { value: 'Logged out' });
      assert.deepEqual((await client.get('/me')).body, { data: {} });
    });

    it('a flash message set after regenerate reaches the next request', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 1 });
      await client.post('/life/regenerate-then-flash');
      assert.deepEqual((await client.get('/flash/notice')).body, { value: 'Welcome back' });
      assert.deepEqual((await client.get('/me')).body, { data: { userId: 1 } });
    });

    it('a write racing a destroy never brings the destroyed session back', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 1 });
      const { sid } = claimsOf(client.token);
      const [write] = await Promise.all([client.fork().post('/set-slowly', { late: true }), client.fork().post('/life/destroy')]);
      assert.equal(write.status, 200);
      assert.equal(await rowExists(sid), false);
      assert.notEqual(claimsOf(write.issued).sid, sid);
      assert.deepEqual((await new SessionClient(running.url, 'cookie', write.issued).get('/me')).body, { data: { late: true } });
    });

    it('a stale stored=false token of a destroyed session cannot recreate it', async () => {
      const client = new SessionClient(running.url);
      await client.post('/claims', { visitor: true });
      const stale = client.fork();
      const { sid } = claimsOf(client.token);
      await client.post('/set', { userId: 1 });
      await client.post('/life/destroy');
      const write = await stale.post('/set', { resurrected: true });
      assert.notEqual(claimsOf(write.issued).sid, sid);
      assert.equal(await rowExists(sid), false);
    });

    it('revoke(sid) ends a session by id', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 3 });
      await service().revoke(claimsOf(client.token).sid);
      assert.deepEqual((await client.get('/me')).body, { data: {} });
    });

    it('lists the live sessions of a user with one indexed query, and revokes all but one', async () => {
      const userId = Math.floor(Math.random() * 1e9);
      const devices = [new SessionClient(running.url), new SessionClient(running.url), new SessionClient(running.url)];
      for (const device of devices) await device.post('/set', { userId });
      const other = new SessionClient(running.url);
      await other.post('/set', { userId: userId + 1 });
      const listed = await counters.measure(() => service().listForUser(userId));
      assert.equal(listed.mysql.queries, 1);
      assert.deepEqual(listed.result.map((s) => s.sid).sort(), devices.map((d) => claimsOf(d.token).sid).sort());
      const keep = claimsOf(devices[0].token).sid;
      assert.equal(await service().revokeAllForUser(userId, { except: keep }), 2);
      assert.deepEqual((await devices[0].get('/me')).body, { data: { userId } });
      assert.deepEqual((await devices[1].get('/me')).body, { data: {} });
      assert.deepEqual((await devices[2].get('/me')).body, { data: {} });
      assert.deepEqual((await other.get('/me')).body, { data: { userId: userId + 1 } });
      assert.deepEqual((await service().listForUser(userId)).map((s) => s.sid), [keep]);
    });

    it('after regenerate only the new id is listed for the user', async () => {
      const userId = Math.floor(Math.random() * 1e9);
      const client = new SessionClient(running.url);
      await client.post('/set', { userId });
      await client.post('/life/regenerate');
      assert.deepEqual((await service().listForUser(userId)).map((s) => s.sid), [claimsOf(client.token).sid]);
    });
  });

  describe(`logging out without a session (${adapter})`, () => {
    // No resync timer: its SELECT would land in the measuring window.
    const options = realStoreOptions({ revocationSyncInterval: 0 });
    let running: RunningApp;
    let mysql: Connection;
    let counters: StorageCounters;
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

    const tombstones = async () => {
      const [[row]] = await mysql.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${options.tableName}_revoked`);
      return Number(row.n);
    };

    it('destroy() with no token, a forged one or an already revoked one does no storage I/O, keeps no tombstone and no memory, and clears the cookie', async () => {
      const registry = running.app.get(RevocationRegistry);
      const revoked = new SessionClient(running.url);
      await revoked.post('/claims', { role: 'admin' });
      const replay = revoked.fork();
      await revoked.post('/life/destroy');
      const forged = `${replay.token!.slice(0, -4)}AAAA`;
      const before = { tombstones: await tombstones(), inMemory: registry.size };
      assert.deepEqual(before, { tombstones: 1, inMemory: 1 });

      const usage = await counters.measure(async () => {
        const answers: Array<string | undefined> = [];
        for (let i = 0; i < 100; i++) answers.push((await new SessionClient(running.url).post('/life/plain-logout')).setCookie);
        for (let i = 0; i < 20; i++) answers.push((await new SessionClient(running.url, 'cookie', forged).post('/life/plain-logout')).setCookie);
        for (let i = 0; i < 20; i++) answers.push((await replay.fork().post('/life/plain-logout')).setCookie);
        for (let i = 0; i < 20; i++) answers.push((await new SessionClient(running.url, 'bearer', replay.token).post('/life/destroy')).setCookie);
        return answers;
      });
      assert.deepEqual({ redis: usage.redis.total, mysql: usage.mysql.queries }, { redis: 0, mysql: 0 });
      assert.deepEqual(new Set(usage.result), new Set(['ezsession=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax']));
      assert.deepEqual({ tombstones: await tombstones(), inMemory: registry.size }, before);
    });
  });

  describe(`revocation across instances (${adapter})`, () => {
    const options = realStoreOptions();
    let first: RunningApp;
    let second: RunningApp;
    before(async () => {
      first = await startFixtureApp(adapter, options);
      second = await startFixtureApp(adapter, options);
    });
    after(async () => {
      await first?.close();
      await second?.close();
    });

    it('a session destroyed on one instance is refused by another at once, also when it stored nothing', async () => {
      const client = new SessionClient(first.url);
      await client.post('/claims', { role: 'admin' });
      const onSecond = new SessionClient(second.url, 'cookie', client.token);
      assert.deepEqual((await onSecond.get('/claims')).body, { claims: { role: 'admin' } });
      await client.post('/life/destroy');
      let refused = false;
      for (let attempt = 0; attempt < 50 && !refused; attempt++) {
        refused = JSON.stringify((await onSecond.fork().get('/claims')).body) === JSON.stringify({ claims: {} });
        if (!refused) await sleep(20);
      }
      assert.ok(refused, 'the other instance learned the revocation through Redis');
    });

    it('metrics(): a revocation counts as sent where it was made and as received where it was heard, its own echo not counted', async () => {
      const metricsOf = (app: RunningApp) => app.app.get(EzSessionService).metrics();
      const [firstBefore, secondBefore] = [metricsOf(first), metricsOf(second)];
      const revokeOn = async (app: RunningApp) => {
        const client = new SessionClient(app.url);
        await client.post('/claims', { role: 'admin' });
        await client.post('/life/destroy');
      };
      const heard = (app: RunningApp, before: { revocationsReceived: number }, count: number) =>
        pollUntil('the revocation to be heard', async () => (metricsOf(app).revocationsReceived - before.revocationsReceived >= count ? true : undefined), { timeoutMs: 5_000 });
      await revokeOn(first);
      await heard(second, secondBefore, 1);
      // Sent after it on the same channel: once the first instance hears this one, its own echo of the earlier one has come back too.
      await revokeOn(second);
      await heard(first, firstBefore, 1);
      const [firstAfter, secondAfter] = [metricsOf(first), metricsOf(second)];
      assert.deepEqual(
        { first: [firstAfter.revocationsSent - firstBefore.revocationsSent, firstAfter.revocationsReceived - firstBefore.revocationsReceived], second: [secondAfter.revocationsSent - secondBefore.revocationsSent, secondAfter.revocationsReceived - secondBefore.revocationsReceived] },
        { first: [1, 1], second: [1, 1] }
      );
    });

    it('an instance started later knows earlier revocations from the database', async () => {
      const client = new SessionClient(first.url);
      await client.post('/claims', { role: 'admin' });
      const replay = client.fork();
      await client.post('/life/destroy');
      const late = await startFixtureApp(adapter, options);
      try {
        assert.deepEqual((await new SessionClient(late.url, 'cookie', replay.token).get('/claims')).body, { claims: {} });
      } finally {
        await late.close();
      }
    });
  });

  describe(`log out everywhere: revokeAllForUser with the user id in a claim (${adapter})`, () => {
    // No resync timer: its SELECT would land in the measuring window; the boot and pub/sub are what is tested here.
    const options = realStoreOptions({ userId: { claim: 'uid' }, revocationSyncInterval: 0 });
    let first: RunningApp;
    let second: RunningApp;
    let mysql: Connection;
    let counters: StorageCounters;
    before(async () => {
      first = await startFixtureApp(adapter, options);
      second = await startFixtureApp(adapter, options);
      mysql = await createConnection(testEnv().mysqlUrl);
      counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
    });
    after(async () => {
      await first?.close();
      await second?.close();
      await mysql?.end();
      await counters?.close();
    });

    const service = () => first.app.get(EzSessionService);
    /** A user id of this test's own. */
    const someone = () => `frank-${Math.random().toString(36).slice(2, 8)}`;
    /** A claims-only login (stored=false) on `app`. */
    async function claimsOnly(app: RunningApp, uid: string, transport: 'cookie' | 'bearer' = 'cookie'): Promise<SessionClient> {
      const client = new SessionClient(app.url, transport);
      await client.post('/claims', { uid });
      assert.equal(claimsOf(client.token).stored, false);
      return client;
    }
    const claimsOn = async (app: RunningApp, client: SessionClient) => (await new SessionClient(app.url, client.transport, client.token).get('/claims')).body.claims;
    /** Waits until `app` refuses `client`'s token (pub/sub is immediate, but not synchronous). */
    async function refusedOn(app: RunningApp, client: SessionClient): Promise<boolean> {
      for (let attempt = 0; attempt < 50; attempt++) {
        if (JSON.stringify(await claimsOn(app, client)) === '{}') return true;
        await sleep(20);
      }
      return false;
    }

    it('refuses every token of the user, stored or claims-only, on every instance, and no other user\'s; a refused request costs no I/O', async () => {
      const uid = someone();
      const tokens = [await claimsOnly(first, uid), await claimsOnly(second, uid), await claimsOnly(second, uid, 'bearer')];
      const stored = new SessionClient(first.url);
      await stored.post('/set-with-claims', { data: { cart: ['apple'] }, claims: { uid } });
      assert.equal(claimsOf(stored.token).stored, true);
      const grace = await claimsOnly(first, `${uid}-grace`);
      for (const client of [...tokens, stored]) assert.equal((await claimsOn(second, client)).uid, uid);

      assert.equal(await service().revokeAllForUser(uid), 1, 'one stored session revoked by id');
      for (const client of [...tokens, stored]) {
        assert.deepEqual(await claimsOn(first, client), {}, 'refused at once where it was called');
        assert.ok(await refusedOn(second, client), 'refused on the other instance');
      }
      assert.deepEqual(await claimsOn(second, grace), { uid: `${uid}-grace` });
      const usage = await counters.measure(() => new SessionClient(second.url, 'cookie', tokens[0].token).get('/claims'));
      assert.deepEqual(usage.result.body, { claims: {} });
      assert.deepEqual({ redis: usage.redis.total, mysql: usage.mysql.queries }, { redis: 0, mysql: 0 });

      // Kept until every session begun before the cut-off has passed its absolute timeout, then GC'd like any tombstone.
      const [[row]] = await mysql.query<RowDataPacket[]>(`SELECT COUNT(*) AS n, MAX(expires_at - revoked_at) AS kept FROM ${options.tableName}_revoked WHERE sid LIKE 'u%'`);
      assert.deepEqual({ n: Number(row.n), kept: Number(row.kept) }, { n: 1, kept: (86400 + 30) * 1000 });
    });

    it('a login right after the call is not refused, on either instance; one just before it is', async () => {
      const uid = someone();
      const before = await claimsOnly(second, uid);
      await service().revokeAllForUser(uid);
      const afterwards = await claimsOnly(second, uid);
      const onFirst = await claimsOnly(first, uid);
      assert.ok(await refusedOn(second, before));
      for (const app of [first, second]) {
        assert.deepEqual(await claimsOn(app, afterwards), { uid });
        assert.deepEqual(await claimsOn(app, onFirst), { uid });
      }
      // Still so after the other instance's next sync and after a restart.
      await second.app.get(RevocationRegistry).resync();
      assert.deepEqual(await claimsOn(second, afterwards), { uid });
    });

    it('a token minted for an old session by a request in flight on another instance during the call is refused too', async () => {
      const uid = someone();
      const client = await claimsOnly(second, uid);
      // /set-slowly reads the session, waits 100 ms, then writes: its answer carries a token for the old session.
      const inFlight = client.fork().post('/set-slowly', { late: true });
      await service().revokeAllForUser(uid);
      const answer = await inFlight;
      assert.equal(answer.status, 200);
      assert.equal(claimsOf(answer.issued).sid, claimsOf(client.token).sid);
      assert.ok(await refusedOn(second, new SessionClient(second.url, 'cookie', answer.issued)));
      assert.deepEqual(await claimsOn(first, new SessionClient(first.url, 'cookie', answer.issued)), {});
    });

    it('{ except } spares one session of the user on every instance; a later call without it ends that one too', async () => {
      const uid = someone();
      const kept = await claimsOnly(first, uid);
      const other = await claimsOnly(second, uid);
      await service().revokeAllForUser(uid, { except: claimsOf(kept.token).sid });
      assert.ok(await refusedOn(second, other));
      for (const app of [first, second]) assert.deepEqual(await claimsOn(app, kept), { uid });
      await service().revokeAllForUser(uid);
      assert.ok(await refusedOn(second, kept));
      assert.deepEqual(await claimsOn(first, kept), {});
    });

    it('an instance started later knows the cut-off (and the exemption) from the database', async () => {
      const uid = someone();
      const old = await claimsOnly(first, uid);
      const spared = await claimsOnly(first, uid);
      await service().revokeAllForUser(uid, { except: claimsOf(spared.token).sid });
      const late = await startFixtureApp(adapter, options);
      try {
        assert.deepEqual(await claimsOn(late, old), {});
        assert.deepEqual(await claimsOn(late, spared), { uid });
        assert.deepEqual(await claimsOn(late, await claimsOnly(late, uid)), { uid });
      } finally {
        await late.close();
      }
    });
  });

  describe(`revocation while pub/sub is down (${adapter})`, () => {
    // The second instance reaches Redis through a proxy that is held: its subscription stays open
    // (no reconnect, which would resync by itself) but delivers nothing, so only its own timer
    // can tell it of a revocation made on the first instance.
    const syncSeconds = 1;
    const redisUrl = new URL(testEnv().redisUrl);
    const proxy = new TcpProxy({ host: redisUrl.hostname, port: Number(redisUrl.port) });
    let first: RunningApp;
    let second: RunningApp;
    before(async () => {
      await proxy.start();
      const options = realStoreOptions({ userId: { claim: 'uid' } });
      first = await startFixtureApp(adapter, options);
      second = await startFixtureApp(adapter, { ...options, redis: `redis://${LOOPBACK}:${proxy.port}`, revocationSyncInterval: syncSeconds });
    });
    after(async () => {
      proxy.resume();
      await first?.close();
      await second?.close();
      await proxy.stop();
    });

    it('an instance that hears nothing over pub/sub refuses a session revoked elsewhere within revocationSyncInterval, long before the GC runs', async () => {
      const client = new SessionClient(first.url);
      await client.post('/claims', { role: 'admin' });
      const onSecond = new SessionClient(second.url, 'cookie', client.token);
      assert.deepEqual((await onSecond.get('/claims')).body, { claims: { role: 'admin' } });
      proxy.pause();
      await client.post('/life/destroy');
      const revokedAt = performance.now();
      let refusedAfterMs: number | undefined;
      while (refusedAfterMs === undefined && performance.now() - revokedAt < (syncSeconds + 2) * 1000) {
        // A claims read does no storage I/O: the held proxy does not slow it down.
        if (JSON.stringify((await onSecond.fork().get('/claims')).body) === JSON.stringify({ claims: {} })) refusedAfterMs = performance.now() - revokedAt;
        else await sleep(50);
      }
      assert.ok(refusedAfterMs !== undefined, `refused within ${syncSeconds + 2} s of the revocation (the GC runs every 600 s)`);
    });

    it('an instance that hears nothing over pub/sub refuses the claims-only tokens of a user logged out everywhere within revocationSyncInterval', async () => {
      const uid = `sync-${Math.random()}`;
      const client = new SessionClient(first.url);
      await client.post('/claims', { uid });
      const onSecond = new SessionClient(second.url, 'cookie', client.token);
      assert.deepEqual((await onSecond.get('/claims')).body, { claims: { uid } });
      proxy.pause();
      await first.app.get(EzSessionService).revokeAllForUser(uid);
      const revokedAt = performance.now();
      let refused = false;
      while (!refused && performance.now() - revokedAt < (syncSeconds + 2) * 1000) {
        refused = JSON.stringify((await onSecond.fork().get('/claims')).body) === JSON.stringify({ claims: {} });
        if (!refused) await sleep(50);
      }
      assert.ok(refused, `refused within ${syncSeconds + 2} s of the call`);
      proxy.resume();
    });
  });

  describe(`operator view (${adapter})`, () => {
    let running: RunningApp;
    before(async () => (running = await startFixtureApp(adapter, realStoreOptions({ idleTimeout: 900, absoluteTimeout: 3600, lockTimeout: 2 }))));
    after(async () => running?.close());

    it('countActive counts stored, unexpired sessions', async () => {
      const service = running.app.get(EzSessionService);
      const before = await service.countActive();
      const client = new SessionClient(running.url);
      await client.post('/set', { a: 1 });
      await new SessionClient(running.url).post('/claims', { only: 'claims' });
      assert.equal(await service.countActive(), before + 1);
    });

    it('settings shows the resolved timeouts, GC schedule, cookie and backends, and never a secret', () => {
      const settings = running.app.get(EzSessionService).settings();
      assert.equal(settings.idleTimeout, 900);
      assert.equal(settings.absoluteTimeout, 3600);
      assert.equal(settings.lockTimeout, 2);
      assert.deepEqual(settings.gc, { interval: 600, batchSize: 1000 });
      assert.deepEqual(settings.cookie, { name: 'ezsession', secure: 'auto', sameSite: 'lax', domain: undefined, path: '/', httpOnly: true });
      assert.equal(settings.store.dialect, 'mysql');
      assert.equal(settings.cache.kind, 'redis');
      assert.deepEqual(settings.devices, { ip: 'full', userAgent: true });
      assert.deepEqual([settings.maxSessionsPerUser, settings.onSessionLimit], [null, 'evict-oldest']);
      assert.ok(!JSON.stringify(settings).includes(TEST_SECRET));
    });
  });
}
