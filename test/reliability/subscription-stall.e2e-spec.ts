import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { EzSessionService } from '../../lib/index.js';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { OpenResources } from '../support/open-resources.js';
import { pollUntil } from '../support/poll.js';
import { withRedis } from '../support/redis-admin.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { testEnv } from '../support/test-env.js';
import { TIMEOUTS } from '../support/topology-timeouts.js';

// Every instance subscribes to the revocation channel while it boots. A Redis that accepts the
// subscriber's connection and then says nothing (seen from ioredis 5's sharded subscriber on a
// busy Cluster: an SSUBSCRIBE never answered) held the application's boot forever. Here a proxy
// holds every connection opened after the app's own client: the subscriber's.

const BOOT_LIMIT_MS = 20_000;

for (const adapter of ADAPTERS) {
  describe(`a revocation subscription Redis does not answer at boot (${adapter})`, { timeout: TIMEOUTS.suite }, () => {
    const open = new OpenResources();
    let proxy: TcpProxy;
    let client: Redis;

    before(async () => {
      const { hostname, port } = new URL(testEnv().redisUrl);
      proxy = open.add(new TcpProxy({ host: hostname, port: Number(port) }), (started) => started.stop());
      await proxy.start();
      client = open.add(new Redis({ ...proxy.endpoint, lazyConnect: true, maxRetriesPerRequest: 1 }), (connection) => connection.disconnect());
      client.on('error', () => undefined);
      await client.connect();
      // Held from now on: connections opened later (the subscriber's) get no byte through.
      proxy.pause();
      for (const connection of proxy.connections) connection.resume();
    }, { timeout: TIMEOUTS.hook });
    after(() => open.closeAll(), { timeout: TIMEOUTS.hook });

    it('boots anyway, says so, and receives revocations once Redis answers', { timeout: TIMEOUTS.test }, async () => {
      // Only pub/sub can tell `held` of a revocation quickly: no periodic resync.
      const options = realStoreOptions({ redis: client, revocationSyncInterval: 0 });
      const booting = startFixtureApp(adapter, options).then((app) => open.add(app, (started) => started.close()));
      const held = await Promise.race([booting, sleep(BOOT_LIMIT_MS, undefined, { ref: false })]);
      assert.ok(held, `the app did not boot within ${BOOT_LIMIT_MS} ms while its revocation subscription was unanswered`);
      assert.ok(
        held.logs.some((line) => line.includes('has not confirmed the revocation subscription')),
        `no warning about the subscription among: ${held.logs.join(' | ')}`
      );

      proxy.resume();
      // A claims-only token stores nothing: only the revocation registry can refuse it.
      const other: RunningApp = open.add(await startFixtureApp(adapter, { ...options, redis: testEnv().redisUrl }), (started) => started.close());
      const one = new SessionClient(other.url);
      await one.post('/claims', { role: 'admin' });
      const two = new SessionClient(held.url, 'cookie', one.token);
      assert.deepEqual((await two.get('/claims')).body, { claims: { role: 'admin' } });
      // Both instances subscribed (the held one's subscription completed in the background) before the message is sent.
      const channel = `${options.keyPrefix}revoked`;
      await pollUntil(
        'both instances to subscribe to the revocation channel',
        async () => {
          const [, count] = (await withRedis(proxy.endpoint, (redis) => redis.call('PUBSUB', 'NUMSUB', channel))) as [string, number];
          return Number(count) === 2 ? true : undefined;
        },
        { timeoutMs: 10_000 }
      );
      await other.app.get(EzSessionService).revoke(claimsOf(one.token).sid);
      await pollUntil(
        'the held instance to refuse the revoked token',
        async () => (Object.keys((await two.fork().get('/claims')).body.claims).length === 0 ? true : undefined),
        { timeoutMs: 5_000 }
      );
    });
  });
}
