import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { EzSessionService, type EzSessionEvent, type EzSessionModuleOptions } from '../../lib/index.js';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { testEnv } from '../support/test-env.js';

/** A GET from a chosen loopback address, to present the server with another client IP. */
function getFrom(localAddress: string, url: string, headers: Record<string, string>): Promise<{ body: any; token?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { localAddress, headers }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ body: JSON.parse(text), token: res.headers['x-session-token'] as string | undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

for (const adapter of ADAPTERS) {
  describe(`fingerprint binding (${adapter})`, () => {
    const apps: RunningApp[] = [];
    const start = async (overrides: Partial<EzSessionModuleOptions>) => {
      const app = await startFixtureApp(adapter, realStoreOptions(overrides));
      apps.push(app);
      return app;
    };
    after(async () => {
      for (const app of apps) await app.close();
    });

    it('by default a token presented with another User-Agent gets a new session, and the owner keeps theirs', async () => {
      const events: EzSessionEvent[] = [];
      const running = await start({ on: { fingerprintMismatch: (event) => events.push(event) } });
      const owner = new SessionClient(running.url);
      await owner.post('/set', { userId: 1 }, { 'user-agent': 'Browser A' });
      const thief = owner.fork();
      const stolen = await thief.get('/me', { 'user-agent': 'Browser B' });
      assert.deepEqual(stolen.body, { data: {} });
      assert.deepEqual((await thief.post('/set', { mine: true }, { 'user-agent': 'Browser B' })).status, 200);
      assert.notEqual(claimsOf(thief.token).sid, claimsOf(owner.token).sid);
      assert.deepEqual((await owner.get('/me', { 'user-agent': 'Browser A' })).body, { data: { userId: 1 } });
      assert.equal(events[0]?.sid, claimsOf(owner.token).sid);
    });

    it('with userAgent binding off, a User-Agent change keeps the session', async () => {
      const running = await start({ bind: { userAgent: false } });
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 1 }, { 'user-agent': 'Browser A' });
      assert.deepEqual((await client.get('/me', { 'user-agent': 'Browser B' })).body, { data: { userId: 1 } });
    });

    it('with IP binding on, a request from another address gets a new session', async () => {
      const running = await start({ bind: { ip: true } });
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 1 });
      const headers = { cookie: `ezsession=${client.token}`, 'user-agent': 'node' };
      assert.deepEqual((await getFrom('127.0.0.1', `${running.url}/me`, headers)).body, { data: { userId: 1 } });
      assert.deepEqual((await getFrom('127.0.0.2', `${running.url}/me`, headers)).body, { data: {} });
    });

    it('with IP binding on, a forged X-Forwarded-For does not change the address (no trusted proxy)', async () => {
      const running = await start({ bind: { ip: true } });
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 1 });
      assert.deepEqual((await client.get('/me', { 'x-forwarded-for': '203.0.113.7' })).body, { data: { userId: 1 } });
    });

    it('a custom binding refuses a token presented with another value', async () => {
      const running = await start({ bind: { userAgent: false, custom: (request) => String(request.headers['x-device'] ?? '') } });
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 1 }, { 'x-device': 'phone' });
      assert.deepEqual((await client.get('/me', { 'x-device': 'phone' })).body, { data: { userId: 1 } });
      assert.deepEqual((await client.get('/me', { 'x-device': 'laptop' })).body, { data: {} });
    });

    it('the token carries a keyed hash of the binding, never the User-Agent or IP', async () => {
      const running = await start({ bind: { ip: true } });
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 1 }, { 'user-agent': 'Mozilla/5.0 Distinctive' });
      const payload = Buffer.from(client.token!.split('.')[1], 'base64url').toString();
      assert.ok(!payload.includes('Distinctive') && !payload.includes('127.0.0.1'));
      assert.match(claimsOf(client.token).fp, /^[A-Za-z0-9_-]{22}$/);
    });

    it('changing the secret ends every session', async () => {
      const running = await start({});
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 1 });
      const rotated = await start({ secret: 'a-completely-different-secret-7e6d5c4b3a29180f' });
      assert.deepEqual((await new SessionClient(rotated.url, 'cookie', client.token).get('/me')).body, { data: {} });
    });
  });

  describe(`key rotation (${adapter})`, () => {
    const apps: RunningApp[] = [];
    after(async () => {
      for (const app of apps) await app.close();
    });
    const oldKey = { id: 'k1', secret: 'first-key-material-0a1b2c3d4e5f6a7b8c9d0e1f' };
    const newKey = { id: 'k2', secret: 'second-key-material-9f8e7d6c5b4a39281706f5e4' };

    it('a token signed with a previous key still works and comes back signed with the current key', async () => {
      const base = realStoreOptions();
      const before = await startFixtureApp(adapter, { ...base, secret: [oldKey] });
      apps.push(before);
      const client = new SessionClient(before.url);
      await client.post('/set', { userId: 1 });
      const after = await startFixtureApp(adapter, { ...base, secret: [newKey, oldKey] });
      apps.push(after);
      const rotatedClient = new SessionClient(after.url, 'cookie', client.token);
      const response = await rotatedClient.get('/me');
      assert.deepEqual(response.body, { data: { userId: 1 } });
      assert.equal(JSON.parse(Buffer.from(response.issued!.split('.')[0], 'base64url').toString()).kid, 'k2');
      const removed = await startFixtureApp(adapter, { ...base, secret: [newKey] });
      apps.push(removed);
      assert.deepEqual((await new SessionClient(removed.url, 'cookie', client.token).get('/me')).body, { data: {} });
      assert.deepEqual((await new SessionClient(removed.url, 'cookie', rotatedClient.token).get('/me')).body, { data: { userId: 1 } });
    });
  });

  describe(`read-only sessions (${adapter})`, () => {
    let running: RunningApp;
    before(async () => (running = await startFixtureApp(adapter, realStoreOptions({ lockTimeout: 10 }))));
    after(async () => running?.close());

    it('take no lock: they finish while another request holds the session lock, with the last committed data', async () => {
      const client = new SessionClient(running.url);
      await client.post('/inc');
      let holderDone = false;
      const holder = client.fork().post('/inc-after-pause').then((r) => ((holderDone = true), r));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const read = await client.fork().get('/life/readonly-flash');
      assert.equal(holderDone, false);
      assert.deepEqual(read.body.data, { n: 1 });
      assert.deepEqual((await holder).body, { n: 2 });
    });

    it('refuse changes: the client gets a plain 500 and the data is kept', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { a: 1 });
      const response = await client.post('/life/readonly-write');
      assert.deepEqual(response.body, { statusCode: 500, message: 'Internal server error' });
      assert.deepEqual((await client.get('/me')).body, { data: { a: 1 } });
    });

    it('refuse changes with a logged error naming the key and the handler', async () => {
      await new SessionClient(running.url).post('/life/readonly-write');
      assert.ok(
        running.logs.some((line) => /ReadonlySessionError: Cannot change session key "changed": @Session\(\{ readonly: true \}\) in LifecycleController\.readonlyWrite is read-only/.test(line)),
        running.logs.join('\n')
      );
    });

    it('leave @Flash() beside them working: a flash value set there reaches the next request', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { a: 1 });
      const response = await client.post('/life/readonly-flash-set');
      assert.equal(response.status, 201);
      assert.deepEqual((await client.get('/flash/notice')).body, { value: 'not allowed' });
      assert.deepEqual((await client.get('/me')).body, { data: { a: 1 } });
    });

    it('leave @Flash() beside them working: a flash value read there is consumed, shown once', async () => {
      const client = new SessionClient(running.url);
      await client.post('/flash', { key: 'notice', value: 'Saved' });
      assert.equal((await client.get('/life/readonly-flash')).body.notice, 'Saved');
      assert.equal((await client.get('/life/readonly-flash')).body.notice, null);
      assert.deepEqual((await client.get('/flash/notice')).body, { value: null });
    });
  });

  describe(`audit hooks (${adapter})`, () => {
    const events: EzSessionEvent[] = [];
    let running: RunningApp;
    const record = (event: EzSessionEvent) => events.push(event);
    before(async () => {
      running = await startFixtureApp(
        adapter,
        realStoreOptions({
          lockTimeout: 0.3,
          on: { created: record, regenerated: record, destroyed: record, revoked: record, expired: record, fingerprintMismatch: record, lockTimeout: record }
        })
      );
    });
    after(async () => running?.close());
    const last = () => events[events.length - 1];

    it('report creation, regeneration, destruction and lock timeouts with the session id', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { a: 1 });
      const created = claimsOf(client.token).sid;
      assert.deepEqual(last(), { type: 'created', sid: created });
      await client.post('/life/regenerate');
      assert.deepEqual(last(), { type: 'regenerated', sid: claimsOf(client.token).sid, previousSid: created });
      const regenerated = claimsOf(client.token).sid;
      const holder = client.fork().post('/inc-after-pause');
      await new Promise((resolve) => setTimeout(resolve, 100));
      await client.fork().post('/inc');
      assert.deepEqual(last(), { type: 'lockTimeout', sid: regenerated });
      await holder;
      await client.post('/life/destroy');
      assert.deepEqual(last(), { type: 'destroyed', sid: regenerated });
    });

    it('report a stored session found expired on read', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { a: 1 });
      const { sid } = claimsOf(client.token);
      const { store, cache } = running.app.get(EzSessionService).settings();
      const mysql = await createConnection(testEnv().mysqlUrl);
      await mysql.query(`DELETE FROM ${store.tableName} WHERE sid = ?`, [sid]);
      await mysql.end();
      const redis = new Redis(testEnv().redisUrl);
      await redis.del(`${cache.keyPrefix}${sid}`);
      redis.disconnect();
      await client.get('/me');
      assert.ok(events.some((e) => e.type === 'expired' && e.sid === sid && e.reason === 'idle'));
    });
  });
}
