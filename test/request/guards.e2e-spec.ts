import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { APP_GUARD } from '@nestjs/core';
import { EzSessionGuard } from '../../lib/index.js';
import { ADAPTERS, startApp, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { AppWideController, GuardedController, OpenController } from '../fixtures/guarded.controller.js';
import { cacheReads } from '../support/cache-reads.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { StorageCounters, type StorageUsage } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';

// Redis: the commands the app sent (round trips); a script's own GET and SET run inside Redis.
const io = (usage: StorageUsage) => ({ redis: usage.redis.sent, mysql: usage.mysql.queries });

for (const adapter of ADAPTERS) {
  describe(`guards that read the session (${adapter})`, () => {
    let running: RunningApp;
    let counters: StorageCounters;

    before(async () => {
      running = await startFixtureApp(adapter, realStoreOptions(), { controllers: [GuardedController] });
      counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
    });
    after(async () => {
      await running?.close();
      await counters?.close();
    });

    async function signedIn(): Promise<SessionClient> {
      const client = new SessionClient(running.url);
      await client.post('/login'); // userId 42 in the session, role admin in the claims
      assert.equal(claimsOf(client.token).stored, true);
      return client;
    }

    it('a guard reads the claims with no storage I/O', async () => {
      const client = await signedIn();
      const usage = await counters.measure(() => client.get('/guarded/claims-plain'));
      assert.deepEqual(usage.result.body, { seen: { claims: { role: 'admin' } } });
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
    });

    it('a guard reads the stored session of an undecorated handler with one Redis read, writes nothing and issues no token', async () => {
      const client = await signedIn();
      const usage = await counters.measure(() => client.get('/guarded/session-plain'));
      assert.deepEqual(usage.result.body, { seen: { session: { userId: 42 } } });
      assert.deepEqual(io(usage), { redis: cacheReads(1), mysql: 0 });
      assert.equal(usage.result.issued, undefined);
      assert.equal(usage.result.setCookie, undefined);
    });

    it('a guard and a @Session() handler share one read: one Redis read for the whole request', async () => {
      const client = await signedIn();
      const usage = await counters.measure(() => client.get('/guarded/session-decorated'));
      assert.deepEqual(usage.result.body, { seen: { session: { userId: 42 } }, handler: { userId: 42 } });
      assert.deepEqual(io(usage), { redis: cacheReads(1), mysql: 0 });
    });

    it('a guard in front of a writing handler: the handler changes the data the guard read, and it is stored', async () => {
      const client = await signedIn();
      const usage = await counters.measure(() => client.post('/guarded/session-then-write'));
      assert.deepEqual(usage.result.body, { seen: { session: { userId: 42 } }, visits: 1 });
      // the read before the handler, and the write
      assert.deepEqual({ read: usage.redis.sent.exec, write: usage.redis.sent.evalsha }, { read: 1, write: 1 });
      assert.deepEqual((await client.get('/me')).body, { data: { userId: 42, visits: 1 } });
    });

    it('a guard in front of a locked handler: parallel increments are still exact', async () => {
      const client = await signedIn();
      const answers = await Promise.all(Array.from({ length: 10 }, () => client.fork().post('/guarded/session-then-locked')));
      assert.deepEqual(answers.map((answer) => answer.status), Array(10).fill(201));
      assert.deepEqual(answers.map((answer) => answer.body.n).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      assert.deepEqual((await client.get('/me')).body, { data: { userId: 42, n: 10 } });
    });

    it('a guard of a session that stores nothing sees an empty session and costs nothing', async () => {
      const client = new SessionClient(running.url);
      await client.post('/claims', { theme: 'dark' });
      const usage = await counters.measure(() => client.get('/guarded/both'));
      assert.deepEqual(usage.result.body, { seen: { claims: { theme: 'dark' }, session: {} }, claims: { theme: 'dark' } });
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
    });

    it('a guard without a token sees no claims and no session, and nothing is sent back', async () => {
      const response = await new SessionClient(running.url).get('/guarded/both');
      assert.deepEqual(response.body, { seen: { claims: {}, session: {} }, claims: {} });
      assert.equal(response.setCookie, undefined);
    });

    it('what a guard is given is read-only: a change is a logged error naming the reader, and the client gets a plain 500', async () => {
      const client = await signedIn();
      const response = await client.get('/guarded/meddling');
      assert.deepEqual(response.body, { statusCode: 500, message: 'Internal server error' });
      assert.ok(running.logs.some((line) => /Cannot change session key "meddled": the session from EzSessionService\.session\(\) is read-only/.test(line)));
      assert.deepEqual((await client.get('/me')).body, { data: { userId: 42 } });
    });

    it('a plain handler reads the claims and the session through the request it was given', async () => {
      const client = await signedIn();
      const usage = await counters.measure(() => client.get('/guarded/read-in-handler'));
      assert.deepEqual(usage.result.body, { claims: { role: 'admin' }, session: { userId: 42 } });
      assert.deepEqual(io(usage), { redis: cacheReads(1), mysql: 0 });
    });
  });

  describe(`EzSessionGuard on a route (${adapter})`, () => {
    let running: RunningApp;
    let counters: StorageCounters;

    before(async () => {
      running = await startFixtureApp(adapter, realStoreOptions(), { controllers: [GuardedController] });
      counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
    });
    after(async () => {
      await running?.close();
      await counters?.close();
    });

    it('refuses a session without the required key with 401 and a JSON body naming the key', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { cart: ['apple'] });
      const response = await client.get('/guarded/needs-user');
      assert.equal(response.status, 401);
      assert.deepEqual(response.body, {
        statusCode: 401,
        error: 'Unauthorized',
        message: 'This route needs a session with session key "userId"; sign in first.',
        missing: { keys: ['userId'], claims: [] }
      });
    });

    it('refuses a request without any token the same way', async () => {
      const response = await new SessionClient(running.url).get('/guarded/needs-user');
      assert.equal(response.status, 401);
      assert.deepEqual(response.body.missing, { keys: ['userId'], claims: [] });
    });

    it('lets a session with the key through', async () => {
      const client = new SessionClient(running.url);
      await client.post('/login');
      const response = await client.get('/guarded/needs-user');
      assert.equal(response.status, 200);
      assert.equal(response.body.ok, true);
    });

    it('checks required claims with no storage I/O, refused or let through', async () => {
      const visitor = new SessionClient(running.url);
      await visitor.post('/set', { cart: [] });
      const refused = await counters.measure(() => visitor.get('/guarded/needs-role'));
      assert.equal(refused.result.status, 401);
      assert.deepEqual(refused.result.body.missing, { keys: [], claims: ['role'] });
      assert.deepEqual(io(refused), { redis: {}, mysql: 0 });

      const member = new SessionClient(running.url);
      await member.post('/login');
      const allowed = await counters.measure(() => member.get('/guarded/needs-role'));
      assert.equal(allowed.result.status, 200);
      assert.deepEqual(io(allowed), { redis: {}, mysql: 0 });
    });

    it('checking a session key and a claim costs one Redis read, shared with the handler', async () => {
      const client = new SessionClient(running.url);
      await client.post('/login');
      const usage = await counters.measure(() => client.get('/guarded/needs-both'));
      assert.deepEqual(usage.result.body, { userId: 42 });
      assert.deepEqual(io(usage), { redis: cacheReads(1), mysql: 0 });
    });

    it('a route that requires nothing is reported as a mistake: a logged error naming the option, and a plain 500', async () => {
      const response = await new SessionClient(running.url).get('/guarded/needs-nothing');
      assert.equal(response.status, 500);
      assert.ok(running.logs.some((line) => /EzSession option "guard" is not set and GuardedController\.needsNothing has no @RequireSession/.test(line)));
    });
  });

  describe(`EzSessionGuard for the whole app (${adapter})`, () => {
    let running: RunningApp;

    before(async () => {
      running = await startApp(adapter, realStoreOptions({ guard: { keys: ['userId'] } }), {
        controllers: [AppWideController, OpenController],
        providers: [{ provide: APP_GUARD, useClass: EzSessionGuard }]
      });
    });
    after(async () => running?.close());

    it('routes marked @PublicRoute() answer without a session', async () => {
      assert.equal((await new SessionClient(running.url).get('/app/health')).status, 200);
      assert.equal((await new SessionClient(running.url).get('/open')).status, 200);
    });

    it('every other route needs what the guard option requires', async () => {
      const client = new SessionClient(running.url);
      assert.equal((await client.get('/app/profile')).status, 401);
      await client.post('/app/login');
      const profile = await client.get('/app/profile');
      assert.equal(profile.status, 200);
      assert.deepEqual(profile.body, { userId: 7 });
    });

    it("a route's own @RequireSession replaces the app's requirement", async () => {
      const client = new SessionClient(running.url);
      await client.post('/app/login');
      const response = await client.get('/app/admin');
      assert.equal(response.status, 401);
      assert.deepEqual(response.body.missing, { keys: [], claims: ['admin'] });
    });
  });
}
