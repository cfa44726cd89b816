import assert from 'node:assert/strict';
import { afterEach, after, before, describe, it } from 'node:test';
import { WsAdapter } from '@nestjs/platform-ws';
import type { Socket } from 'socket.io-client';
import { EzSessionService, type EzSessionModuleOptions } from '../../lib/index.js';
import { ADAPTERS, startApp, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { RevokedSocketCloser, SessionGateway } from '../fixtures/session.gateway.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { ManualClock, SECOND } from '../support/manual-clock.js';
import { pollUntil } from '../support/poll.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { closedWithin, connectSocketIo, exceptionOf, USER_AGENT, WsClient } from '../support/socket-clients.js';
import { StorageCounters, type StorageUsage } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';

const io = (usage: StorageUsage) => ({ redis: usage.redis.byCommand, mysql: usage.mysql.queries });
const SIGNED_IN = { claims: { role: 'admin' }, session: { userId: 42 } };

/** Signs in over HTTP (userId 42 in the session, role admin in the claims) and returns the token. */
async function signIn(url: string): Promise<string> {
  const client = new SessionClient(url);
  await client.post('/login', undefined, { 'user-agent': USER_AGENT });
  assert.equal(claimsOf(client.token).stored, true);
  return client.token!;
}

for (const adapter of ADAPTERS) {
  describe(`socket.io gateway sessions (${adapter})`, () => {
    let options: EzSessionModuleOptions;
    let running: RunningApp;
    let counters: StorageCounters;
    const sockets: Socket[] = [];

    before(async () => {
      options = realStoreOptions();
      running = await startFixtureApp(adapter, options, { providers: [SessionGateway] });
      counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
    });
    afterEach(() => {
      for (const socket of sockets.splice(0)) socket.disconnect();
    });
    after(async () => {
      await running?.close();
      await counters?.close();
    });

    async function connect(handshake: Parameters<typeof connectSocketIo>[1]): Promise<Socket> {
      const socket = await connectSocketIo(running.url, handshake);
      sockets.push(socket);
      return socket;
    }

    it('a socket connected with the session cookie reads its claims and session', async () => {
      const socket = await connect({ cookie: await signIn(running.url) });
      assert.deepEqual(await socket.emitWithAck('whoami'), SIGNED_IN);
    });

    it('a socket connected with auth.token reads the same session', async () => {
      const socket = await connect({ authToken: await signIn(running.url) });
      assert.deepEqual(await socket.emitWithAck('whoami'), SIGNED_IN);
    });

    it('a socket connected with Authorization: Bearer reads the same session', async () => {
      const socket = await connect({ bearer: await signIn(running.url) });
      assert.deepEqual(await socket.emitWithAck('whoami'), SIGNED_IN);
    });

    it('@Session() and @Jwt() in a gateway handler read the socket\'s session', async () => {
      const socket = await connect({ cookie: await signIn(running.url) });
      assert.deepEqual(await socket.emitWithAck('whoami-decorated'), SIGNED_IN);
    });

    it('a socket without a session is refused at connection', async () => {
      const socket = await connect({});
      assert.equal(await closedWithin(socket, 2000), 'io server disconnect');
    });

    it('a socket whose token is bound to another user agent is refused at connection', async () => {
      const socket = await connect({ cookie: await signIn(running.url), userAgent: 'some other browser' });
      assert.equal(await closedWithin(socket, 2000), 'io server disconnect');
    });

    it('a socket presenting a token with a forged signature is refused at connection', async () => {
      const token = await signIn(running.url);
      const socket = await connect({ cookie: `${token.slice(0, -4)}AAAA` });
      assert.equal(await closedWithin(socket, 2000), 'io server disconnect');
    });

    it('cross-site WebSocket hijacking: a cookie handshake from another origin gets no session and is refused at connection', async () => {
      const token = await signIn(running.url);
      for (const origin of ['https://attacker.test', 'http://evil.127.0.0.1.nip.io', 'null']) {
        const socket = await connect({ cookie: token, origin });
        assert.equal(await closedWithin(socket, 2000), 'io server disconnect', origin);
      }
    });

    it("a cookie handshake from the app's own origin, and a token handshake from any origin, keep their session", async () => {
      const token = await signIn(running.url);
      assert.deepEqual(await (await connect({ cookie: token, origin: running.url })).emitWithAck('whoami'), SIGNED_IN);
      assert.deepEqual(await (await connect({ authToken: token, origin: 'https://attacker.test' })).emitWithAck('whoami'), SIGNED_IN);
      assert.deepEqual(await (await connect({ bearer: token, origin: 'https://attacker.test' })).emitWithAck('whoami'), SIGNED_IN);
    });

    it('messages read the session loaded at connection: no storage I/O per message', async () => {
      const socket = await connect({ cookie: await signIn(running.url) });
      assert.deepEqual(await socket.emitWithAck('whoami'), SIGNED_IN);
      const usage = await counters.measure(async () => {
        for (let i = 0; i < 3; i++) assert.deepEqual(await socket.emitWithAck('whoami-decorated'), SIGNED_IN);
      });
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
    });

    it('the session a gateway reads is read-only: a change is a logged error, and nothing is stored', async () => {
      const token = await signIn(running.url);
      const socket = await connect({ cookie: token });
      assert.deepEqual(await exceptionOf(socket, 'meddle'), { status: 'error', message: 'Internal server error', cause: { pattern: 'meddle' } });
      assert.ok(running.logs.some((line) => /ReadonlySessionError: Cannot change session key "meddled": .+ is read-only/.test(line)), running.logs.join('\n'));
      assert.deepEqual((await new SessionClient(running.url, 'cookie', token).get('/me', { 'user-agent': USER_AGENT })).body, { data: { userId: 42 } });
    });

    it('EzSessionGuard on a message refuses a missing claim with an exception coded UNAUTHENTICATED, with no storage I/O', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 7 }, { 'user-agent': USER_AGENT });
      const socket = await connect({ cookie: client.token });
      await socket.emitWithAck('whoami'); // the session is loaded at connection
      const usage = await counters.measure(() => exceptionOf(socket, 'admin'));
      assert.deepEqual(usage.result, {
        status: 'error',
        code: 'UNAUTHENTICATED',
        message: 'This message needs a session with claim "role"; sign in first.',
        missing: { keys: [], claims: ['role'] }
      });
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
    });

    it('EzSessionGuard on a message lets a session with the claim through', async () => {
      const socket = await connect({ cookie: await signIn(running.url) });
      assert.equal(await socket.emitWithAck('admin'), 'secret');
    });

    it('a session revoked here reads as no session on the socket\'s next message, with no storage I/O', async () => {
      const token = await signIn(running.url);
      const socket = await connect({ cookie: token });
      assert.deepEqual(await socket.emitWithAck('whoami'), SIGNED_IN);
      await running.app.get(EzSessionService).revoke(claimsOf(token).sid);
      const usage = await counters.measure(async () => ({ whoami: await socket.emitWithAck('whoami'), admin: await exceptionOf(socket, 'admin') }));
      assert.deepEqual(usage.result.whoami, { claims: {}, session: {} });
      assert.equal(usage.result.admin.code, 'UNAUTHENTICATED');
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
    });

    it('a session revoked on another instance reads as no session on the socket\'s next message', async () => {
      const other = await startApp(adapter, options, {});
      try {
        const token = await signIn(running.url);
        const socket = await connect({ cookie: token });
        assert.deepEqual(await socket.emitWithAck('whoami'), SIGNED_IN);
        await other.app.get(EzSessionService).revoke(claimsOf(token).sid);
        await pollUntil('the revocation to reach the socket', async () => ((await socket.emitWithAck('whoami')).session.userId === undefined ? true : undefined), { timeoutMs: 5000 });
        assert.deepEqual(await socket.emitWithAck('whoami'), { claims: {}, session: {} });
      } finally {
        await other.close();
      }
    });
  });

  describe(`socket sessions over time (${adapter})`, () => {
    // The session clock stands still until the test moves it; the token's own expiry (idleTimeout)
    // is checked once, at connection, and the absolute timeout on every message.
    const ABSOLUTE = 3600;
    const clock = new ManualClock();
    let running: RunningApp;
    let socket: Socket | undefined;

    before(async () => {
      running = await startFixtureApp(adapter, realStoreOptions({ idleTimeout: 600, absoluteTimeout: ABSOLUTE, clock }), { providers: [SessionGateway] });
    });
    afterEach(() => socket?.disconnect());
    after(async () => running?.close());

    it('a socket keeps its session past the token\'s expiry, up to the absolute timeout, and reads as no session from then on', async () => {
      const token = await signIn(running.url);
      socket = await connectSocketIo(running.url, { cookie: token });
      // The connection's session is loaded by now (the client's 'connect' can come first): it is
      // read on the clock as it stands, before the test moves it past the row's idle expiry.
      assert.deepEqual(await socket.emitWithAck('whoami'), SIGNED_IN);
      const endsAt = (claimsOf(token).sct + ABSOLUTE) * SECOND;
      clock.advanceTo(endsAt - 1);
      assert.deepEqual(await socket.emitWithAck('whoami'), SIGNED_IN);
      clock.advance(1);
      assert.deepEqual(await socket.emitWithAck('whoami'), { claims: {}, session: {} });
    });
  });

  describe(`closing the sockets of revoked sessions (${adapter})`, () => {
    let options: EzSessionModuleOptions;
    let running: RunningApp;
    let other: RunningApp;

    before(async () => {
      options = realStoreOptions();
      running = await startFixtureApp(adapter, options, { providers: [SessionGateway, RevokedSocketCloser] });
      other = await startFixtureApp(adapter, options, {});
    });
    after(async () => {
      await running?.close();
      await other?.close();
    });

    it('onSocketRevoked hears of a session revoked on another instance, and the app closes its socket', async () => {
      const token = await signIn(running.url);
      const socket = await connectSocketIo(running.url, { cookie: token });
      const bystander = await connectSocketIo(running.url, { cookie: await signIn(running.url) });
      try {
        assert.deepEqual(await socket.emitWithAck('whoami'), SIGNED_IN);
        assert.deepEqual(await bystander.emitWithAck('whoami'), SIGNED_IN);
        const closed = closedWithin(socket, 5000);
        await other.app.get(EzSessionService).revoke(claimsOf(token).sid);
        assert.equal(await closed, 'io server disconnect');
        assert.deepEqual(running.app.get(RevokedSocketCloser).closed, [claimsOf(token).sid]);
        assert.deepEqual(await bystander.emitWithAck('whoami'), SIGNED_IN);
      } finally {
        socket.disconnect();
        bystander.disconnect();
      }
    });

    it('a logout over HTTP closes the sockets of that session', async () => {
      const login = new SessionClient(running.url);
      await login.post('/life/login', { userId: 5 }, { 'user-agent': USER_AGENT });
      const socket = await connectSocketIo(running.url, { cookie: login.token });
      try {
        assert.deepEqual((await socket.emitWithAck('whoami')).session, { userId: 5 });
        const closed = closedWithin(socket, 5000);
        await login.post('/life/plain-logout', undefined, { 'user-agent': USER_AGENT });
        assert.equal(await closed, 'io server disconnect');
      } finally {
        socket.disconnect();
      }
    });
  });

  describe(`ws gateway sessions (${adapter})`, () => {
    let running: RunningApp;

    before(async () => {
      running = await startFixtureApp(adapter, realStoreOptions(), {
        providers: [SessionGateway],
        configure: (app) => app.useWebSocketAdapter(new WsAdapter(app))
      });
    });
    after(async () => running?.close());

    it('a ws socket connected with the session cookie reads its claims and session', async () => {
      const client = await WsClient.connect(running.url, { cookie: await signIn(running.url) });
      try {
        assert.deepEqual(await client.request('whoami'), SIGNED_IN);
        assert.deepEqual(await client.request('whoami-decorated'), SIGNED_IN);
      } finally {
        client.close();
      }
    });

    it('a ws socket connected with Authorization: Bearer reads the same session', async () => {
      const client = await WsClient.connect(running.url, { bearer: await signIn(running.url) });
      try {
        assert.deepEqual(await client.request('whoami'), SIGNED_IN);
      } finally {
        client.close();
      }
    });

    it('a ws socket without a session is closed at connection', async () => {
      const client = await WsClient.connect(running.url, {});
      assert.equal(await client.closedWithin(2000), 4401);
    });

    it('cross-site WebSocket hijacking: a ws cookie handshake from another origin gets no session; from its own origin it keeps it', async () => {
      const token = await signIn(running.url);
      const hijacked = await WsClient.connect(running.url, { cookie: token, origin: 'https://attacker.test' });
      assert.equal(await hijacked.closedWithin(2000), 4401);
      const own = await WsClient.connect(running.url, { cookie: token, origin: running.url });
      try {
        assert.deepEqual(await own.request('whoami'), SIGNED_IN);
      } finally {
        own.close();
      }
    });
  });
}
