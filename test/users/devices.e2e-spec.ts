import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { EzSessionService, type EzSessionEvent, type EzSessionModuleOptions } from '../../lib/index.js';
import { DevicesController } from '../fixtures/devices.controller.js';
import { ADAPTERS, startFixtureApp, TEST_SECRET, type AdapterName, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { ManualClock, SECOND } from '../support/manual-clock.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { StorageCounters } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';

const CHROME_MAC = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36';
const SAFARI_IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
const DAY = 86400;

const newUser = () => String(Math.floor(Math.random() * 1e9));
const agent = (ua: string) => ({ 'user-agent': ua });

function startDevicesApp(adapter: AdapterName, options: EzSessionModuleOptions): Promise<RunningApp> {
  return startFixtureApp(adapter, options, { controllers: [DevicesController] });
}

/** Signs a new device in as `userId`; the client then holds its session. */
async function signIn(url: string, userId: string, ua = CHROME_MAC, extra: Record<string, unknown> = {}): Promise<SessionClient> {
  const client = new SessionClient(url);
  const response = await client.post('/devices/login', { userId, ...extra }, agent(ua));
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return client;
}

for (const adapter of ADAPTERS) {
  describe(`devices: metadata, listing, revoking (MariaDB, ${adapter})`, () => {
    const clock = new ManualClock();
    const events: EzSessionEvent[] = [];
    // Devices here sign in with a browser's User-Agent and then ask as a plain client: no binding to it.
    const options = realStoreOptions({
      bind: { userAgent: false },
      userId: { session: 'userId' },
      maxIdleTimeout: 30 * DAY,
      maxAbsoluteTimeout: 90 * DAY,
      clock,
      on: { revokedByUser: (event) => events.push(event) }
    });
    let first: RunningApp;
    let second: RunningApp;
    let mysql: Connection;
    let redis: Redis;
    let counters: StorageCounters;

    before(async () => {
      first = await startDevicesApp(adapter, options);
      second = await startDevicesApp(adapter, options);
      mysql = await createConnection(testEnv().mysqlUrl);
      redis = new Redis(testEnv().redisUrl);
      counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
    });
    after(async () => {
      await first?.close();
      await second?.close();
      await mysql?.end();
      redis?.disconnect();
      await counters?.close();
    });

    const row = async (sid: string) => {
      const [rows] = await mysql.query<RowDataPacket[]>(`SELECT user_agent, ip, device, expires_at FROM ${options.tableName} WHERE sid = ?`, [sid]);
      return rows[0];
    };

    it('records the user agent, the client IP and a device label in the INSERT of the login, with no extra statement', async () => {
      const userId = newUser();
      // The first login of an instance prepares its statements; the ones measured reuse them.
      await signIn(first.url, newUser());
      const client = new SessionClient(first.url);
      // A forwarding header is not the client's address unless the app trusts its proxy (request.ip says).
      const login = await counters.measure(() => client.post('/devices/login', { userId }, { ...agent(CHROME_MAC), 'x-forwarded-for': '198.51.100.9' }));
      assert.equal(login.result.status, 200);
      const stored = await row(claimsOf(client.token).sid);
      assert.deepEqual({ ...stored, expires_at: undefined }, { user_agent: CHROME_MAC, ip: '127.0.0.1', device: 'Chrome 130 on macOS', expires_at: undefined });
      // The same login from a client that sends no User-Agent records nothing and sends the same statements.
      const bare = new SessionClient(first.url);
      const without = await counters.measure(() => bare.post('/devices/login', { userId: newUser() }, { 'user-agent': '' }));
      assert.deepEqual(login.mysql.byCommand, without.mysql.byCommand);
      assert.equal(login.mysql.queries, without.mysql.queries);
      assert.deepEqual({ ...(await row(claimsOf(bare.token).sid)), expires_at: undefined }, { user_agent: null, ip: '127.0.0.1', device: null, expires_at: undefined });
    });

    it("lists a user's sessions newest activity first with their devices, the request's own marked current; claims-only sessions are not listed", async () => {
      const userId = newUser();
      const mac = await signIn(first.url, userId, CHROME_MAC);
      clock.advance(SECOND);
      const phone = await signIn(second.url, userId, SAFARI_IPHONE);
      await new SessionClient(first.url).post('/claims', { userId });
      const listed = (await mac.get('/devices')).body.sessions as Array<Record<string, unknown>>;
      assert.deepEqual(
        listed.map(({ sid, device, userAgent, ip, current }) => ({ sid, device, userAgent, ip, current })),
        [
          { sid: claimsOf(phone.token).sid, device: 'Safari 17 on iPhone', userAgent: SAFARI_IPHONE, ip: '127.0.0.1', current: false },
          { sid: claimsOf(mac.token).sid, device: 'Chrome 130 on macOS', userAgent: CHROME_MAC, ip: '127.0.0.1', current: true }
        ]
      );
      assert.equal(listed[0].lastSeenAt, new Date(clock.now()).toISOString());
      assert.deepEqual(Object.keys(listed[0]).sort(), ['createdAt', 'current', 'device', 'expiresAt', 'ip', 'lastSeenAt', 'sid', 'updatedAt', 'userAgent']);
      // Without a request, nothing is current.
      assert.deepEqual((await first.app.get(EzSessionService).listForUser(userId)).map((session) => session.current), [false, false]);
    });

    it('lastSeenAt moves with the writes that happen anyway (the sliding extension), never with a plain read', async () => {
      const userId = newUser();
      const client = await signIn(first.url, userId);
      const { sid } = claimsOf(client.token);
      const seen = async () => (await first.app.get(EzSessionService).listForUser(userId))[0].lastSeenAt.getTime();
      const loginAt = clock.now();
      clock.advance(60 * SECOND);
      const read = await counters.measure(() => client.get('/me'));
      assert.equal(read.mysql.queries, 0);
      assert.equal(await seen(), loginAt);
      // Past half the idle window (2 h by default), the read extends the row, and with it the last activity.
      clock.advance(3600 * SECOND);
      await client.get('/me');
      assert.equal(await seen(), clock.now());
      assert.equal((await row(sid)).device, 'Chrome 130 on macOS');
    });

    it('sessionId gives the id of the current session with no I/O, and nothing without one', async () => {
      const client = await signIn(first.url, newUser());
      const read = await counters.measure(() => client.get('/devices/sid'));
      assert.deepEqual(read.result.body, { sid: claimsOf(client.token).sid });
      assert.deepEqual({ redis: read.redis.total, mysql: read.mysql.queries }, { redis: 0, mysql: 0 });
      assert.deepEqual((await new SessionClient(first.url).get('/devices/sid')).body, { sid: null });
    });

    it("revokeOthers ends every other session of the user on every instance and says how many; other users' stay", async () => {
      const userId = newUser();
      const here = await signIn(first.url, userId);
      const there = [await signIn(second.url, userId), await signIn(second.url, userId, SAFARI_IPHONE)];
      const someoneElse = await signIn(second.url, newUser());
      for (const device of there) assert.equal((await device.get('/me')).body.data.userId, userId);
      events.length = 0;
      assert.deepEqual((await here.post('/devices/others/revoke')).body, { revoked: 2 });
      for (const device of there) assert.deepEqual((await device.get('/me')).body, { data: {} });
      assert.equal((await here.get('/me')).body.data.userId, userId);
      assert.ok((await someoneElse.get('/me')).body.data.userId);
      assert.deepEqual(
        events.map((event) => [event.type, event.userId, event.bySid]),
        there.map(() => ['revokedByUser', userId, claimsOf(here.token).sid])
      );
      assert.deepEqual((await here.get('/devices')).body.sessions.map((session: { sid: string }) => session.sid), [claimsOf(here.token).sid]);
    });

    it("revokeForUser ends the user's own session by id, and refuses another user's (no IDOR)", async () => {
      const userId = newUser();
      const mine = [await signIn(first.url, userId), await signIn(second.url, userId)];
      const victim = await signIn(second.url, newUser());
      const victimSid = claimsOf(victim.token).sid;
      assert.deepEqual((await mine[0].post(`/devices/${victimSid}/revoke`)).body, { revoked: false });
      assert.ok((await victim.get('/me')).body.data.userId);
      assert.ok(await row(victimSid));
      assert.deepEqual((await mine[0].post(`/devices/not-a-session-id/revoke`)).body, { revoked: false });
      assert.deepEqual((await mine[0].post(`/devices/${claimsOf(mine[1].token).sid}/revoke`)).body, { revoked: true });
      assert.deepEqual((await mine[1].get('/me')).body, { data: {} });
      assert.equal(await row(claimsOf(mine[1].token).sid), undefined);
    });

    it('"remember me": the token exp, cookie Max-Age, row expiry and cache TTL all follow the session\'s own lifetime', async () => {
      const client = new SessionClient(first.url);
      const response = await client.post('/devices/login', { userId: newUser(), remember: true, idleTimeout: 14 * DAY, absoluteTimeout: 60 * DAY }, agent(CHROME_MAC));
      const now = Math.floor(clock.now() / 1000);
      const claims = claimsOf(client.token);
      assert.equal(claims.exp, now + 14 * DAY);
      assert.deepEqual(claims.lt, [14 * DAY, 60 * DAY]);
      assert.match(String(response.setCookie), new RegExp(`Max-Age=${14 * DAY};`));
      assert.equal(Number((await row(claims.sid)).expires_at), clock.now() + 14 * DAY * 1000);
      // The default session of the same app keeps the module's 2 hours.
      const plain = await signIn(first.url, newUser());
      assert.equal(claimsOf(plain.token).exp, now + 7200);
      assert.equal(Number((await row(claimsOf(plain.token).sid)).expires_at), clock.now() + 7200 * 1000);
      // A session given a shorter life than the cache's TTL gets a shorter cache entry.
      const brief = new SessionClient(first.url);
      await brief.post('/devices/login', { userId: newUser(), remember: true, idleTimeout: 600, absoluteTimeout: 1200 });
      const ttl = await redis.pttl(`${options.keyPrefix}${claimsOf(brief.token).sid}`);
      assert.ok(ttl > 0 && ttl <= 599_000, `cache TTL ${ttl} ms within the 600 s session`);
    });

    it("a remembered session lives past the module's timeouts, and ends at its own absolute timeout with no I/O", async () => {
      const client = await signIn(first.url, newUser(), CHROME_MAC, { remember: true, idleTimeout: 2 * DAY, absoluteTimeout: 3 * DAY });
      clock.advance(1.5 * DAY * 1000);
      assert.ok((await client.get('/me')).body.data.userId, 'alive after 36 h, past the module 24 h absolute timeout');
      clock.advance(1.5 * DAY * 1000);
      const late = await counters.measure(() => client.get('/devices/sid'));
      assert.deepEqual(late.result.body, { sid: null });
      assert.deepEqual({ redis: late.redis.total, mysql: late.mysql.queries }, { redis: 0, mysql: 0 });
    });

    it('refuses a lifetime beyond maxIdleTimeout, changing nothing', async () => {
      const client = await signIn(first.url, newUser());
      const before = client.token;
      const response = await client.post('/devices/login', { userId: 1, remember: true, idleTimeout: 31 * DAY });
      assert.equal(response.status, 500);
      assert.equal(client.token, before);
      assert.match(first.logs.join('\n') + second.logs.join('\n'), /idleTimeout must be a number of seconds from 1 to 2592000 \(the maxIdleTimeout option\)/);
    });

    it('a guard records in the session through writableSession(), with one read shared with the handler; the read-only view says to use it', async () => {
      const client = await signIn(first.url, newUser());
      assert.deepEqual((await client.get('/devices/recorded')).body, { visits: 1 });
      assert.deepEqual((await client.get('/devices/recorded')).body, { visits: 2 });
      assert.equal((await client.get('/me')).body.data.visits, 2);
      const refused = await client.get('/devices/recorded-readonly');
      assert.equal(refused.status, 500);
      // Nest's loggers write to the logger of the app created last: the two apps' logs are read together.
      assert.match(first.logs.join('\n') + second.logs.join('\n'), /Cannot change session key "visits": the session from EzSessionService\.session\(\) is read-only\. To change it from a guard, an interceptor or a service, use EzSessionService\.writableSession\(context\)\./);
    });

    it('freshWithin: a login within the window passes with no I/O; older, or never authenticated, is 401 SESSION_NOT_FRESH', async () => {
      const client = await signIn(first.url, newUser());
      assert.ok(claimsOf(client.token).aat);
      const fresh = await counters.measure(() => client.get('/devices/sensitive'));
      assert.equal(fresh.result.status, 200);
      assert.deepEqual({ redis: fresh.redis.total, mysql: fresh.mysql.queries }, { redis: 0, mysql: 0 });
      clock.advance(301 * SECOND);
      const stale = await counters.measure(() => client.get('/devices/sensitive'));
      assert.equal(stale.result.status, 401);
      assert.equal(stale.result.body.code, 'SESSION_NOT_FRESH');
      assert.deepEqual({ redis: stale.redis.total, mysql: stale.mysql.queries }, { redis: 0, mysql: 0 });
      // Authenticating again (a password prompt) makes it fresh on the same device.
      await client.post('/devices/login', { userId: 5 });
      assert.equal((await client.get('/devices/sensitive')).status, 200);
      const unverified = new SessionClient(first.url);
      await unverified.post('/devices/login-unverified', { userId: 6 });
      const refused = await unverified.get('/devices/sensitive');
      assert.deepEqual([refused.status, refused.body.code], [401, 'SESSION_NOT_FRESH']);
    });
  });

  describe(`devices: session cap across two instances (MariaDB, ${adapter})`, () => {
    const evicted: EzSessionEvent[] = [];
    const options = realStoreOptions({ bind: { userAgent: false }, userId: { session: 'userId' }, maxSessionsPerUser: 3, on: { sessionLimitEvicted: (event) => evicted.push(event) } });
    const refusing = realStoreOptions({ bind: { userAgent: false }, userId: { session: 'userId' }, maxSessionsPerUser: 2, onSessionLimit: 'refuse' });
    let apps: RunningApp[] = [];
    let mysql: Connection;

    before(async () => {
      apps = [await startDevicesApp(adapter, options), await startDevicesApp(adapter, options), await startDevicesApp(adapter, refusing), await startDevicesApp(adapter, refusing)];
      mysql = await createConnection(testEnv().mysqlUrl);
    });
    after(async () => {
      for (const app of apps) await app.close();
      await mysql?.end();
    });

    const liveRows = async (table: string, userId: string) => {
      const [rows] = await mysql.query<RowDataPacket[]>(`SELECT sid FROM ${table} WHERE user_id = ? AND expires_at > ?`, [userId, Date.now()]);
      return rows.map((entry) => String(entry.sid));
    };

    it('20 logins of one user at once over two instances leave 3 live sessions; the evicted are logged out', async () => {
      const userId = newUser();
      const clients = Array.from({ length: 20 }, (_, index) => new SessionClient(apps[index % 2].url));
      const answers = await Promise.all(clients.map((client) => client.post('/devices/login', { userId })));
      assert.deepEqual(answers.map((answer) => answer.status), Array(20).fill(200));
      const live = await liveRows(options.tableName!, userId);
      assert.equal(live.length, 3);
      let signedIn = 0;
      for (const client of clients) if ((await client.get('/me')).body.data.userId === userId) signedIn++;
      assert.equal(signedIn, 3);
      assert.equal(evicted.filter((event) => event.userId === userId).length, 17);
    });

    it("a login over the cap evicts the least recently active session", async () => {
      const userId = newUser();
      const [oldest, middle, newest] = [await signIn(apps[0].url, userId), await signIn(apps[1].url, userId), await signIn(apps[0].url, userId)];
      // Activity on the oldest makes the middle one the least recently active... only once a write records it.
      await oldest.post('/set', { touched: true });
      await signIn(apps[1].url, userId);
      assert.deepEqual((await middle.get('/me')).body, { data: {} });
      assert.equal((await oldest.get('/me')).body.data.userId, userId);
      assert.equal((await newest.get('/me')).body.data.userId, userId);
    });

    it("'refuse' answers 409 SESSION_LIMIT_REACHED to the login over the cap and stores nothing of it", async () => {
      const userId = newUser();
      await signIn(apps[2].url, userId);
      await signIn(apps[3].url, userId);
      const before = await liveRows(refusing.tableName!, userId);
      const third = new SessionClient(apps[2].url);
      const refused = await third.post('/devices/login', { userId });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.code, 'SESSION_LIMIT_REACHED');
      assert.equal(refused.issued, undefined);
      assert.deepEqual((await liveRows(refusing.tableName!, userId)).sort(), before.sort());
    });
  });
}

for (const adapter of ADAPTERS) describe(`devices on the embedded default store (sql.js, ${adapter})`, () => {
  let running: RunningApp;
  before(
    async () =>
      (running = await startDevicesApp(adapter, {
        secret: TEST_SECRET,
        database: { type: 'sqljs' },
        bind: { userAgent: false },
        userId: { session: 'userId' },
        devices: { ip: 'truncated' },
        maxIdleTimeout: 30 * DAY,
        maxAbsoluteTimeout: 90 * DAY,
        maxSessionsPerUser: 2,
        cookie: { browserSession: true }
      }))
  );
  after(async () => running?.close());

  it('lists devices with truncated IPs, revokes the others and one by id, and caps sessions', async () => {
    const userId = newUser();
    const mac = await signIn(running.url, userId, CHROME_MAC);
    const phone = await signIn(running.url, userId, SAFARI_IPHONE);
    const listed = (await mac.get('/devices')).body.sessions as Array<{ sid: string; ip: string; device: string; current: boolean }>;
    assert.deepEqual(
      listed.map(({ ip, device, current }) => ({ ip, device, current })).sort((a, b) => a.device.localeCompare(b.device)),
      [
        { ip: '127.0.0.0', device: 'Chrome 130 on macOS', current: true },
        { ip: '127.0.0.0', device: 'Safari 17 on iPhone', current: false }
      ]
    );
    await signIn(running.url, userId);
    assert.equal((await running.app.get(EzSessionService).listForUser(userId)).length, 2);
    const other = newUser();
    const a = await signIn(running.url, other);
    const b = await signIn(running.url, other);
    assert.deepEqual((await a.post(`/devices/${claimsOf(phone.token).sid}/revoke`)).body, { revoked: false });
    assert.deepEqual((await a.post('/devices/others/revoke')).body, { revoked: 1 });
    assert.deepEqual((await b.get('/me')).body, { data: {} });
    assert.deepEqual((await a.post(`/devices/${claimsOf(a.token).sid}/revoke`)).body, { revoked: true });
  });

  it('browserSession: a session without "remember me" gets a cookie without Max-Age, a remembered one keeps it', async () => {
    const plain = new SessionClient(running.url);
    const session = await plain.post('/devices/login', { userId: newUser() });
    assert.doesNotMatch(String(session.setCookie), /Max-Age/);
    assert.match(String(session.setCookie), /^ezsession=[^;]+; Path=\/; HttpOnly; SameSite=Lax$/);
    const remembered = await new SessionClient(running.url).post('/devices/login', { userId: newUser(), remember: true });
    assert.match(String(remembered.setCookie), new RegExp(`Max-Age=${30 * DAY};`));
  });
});

describe('the session cap with the user id in a claim (sql.js)', () => {
  let running: RunningApp;
  before(
    async () =>
      (running = await startDevicesApp('express', {
        secret: TEST_SECRET,
        database: { type: 'sqljs' },
        bind: { userAgent: false },
        userId: { claim: 'uid' },
        maxSessionsPerUser: 1
      }))
  );
  after(async () => running?.close());

  it('counts a login whose claim gives the user id, and evicts the older session', async () => {
    const userId = newUser();
    const first = new SessionClient(running.url);
    await first.post('/devices/login-claim', { userId });
    const second = new SessionClient(running.url);
    await second.post('/devices/login-claim', { userId });
    const listed = await running.app.get(EzSessionService).listForUser(userId);
    assert.deepEqual(listed.map((session) => session.sid), [claimsOf(second.token).sid]);
    assert.deepEqual((await first.get('/me')).body, { data: {} });
    assert.deepEqual((await second.get('/me')).body, { data: { signedInAt: 'now' } });
  });
});
