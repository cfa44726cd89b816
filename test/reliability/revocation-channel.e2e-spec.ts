import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADAPTERS, type RunningApp } from '../fixtures/fixture-app.js';
import { RedisServer } from '../support/redis-server.js';
import { SessionClient } from '../support/session-client.js';
import { testEnv } from '../support/test-env.js';
import { startReliabilityApp } from './reliability-app.js';
import { closeApp, RedisProbe, storeOptions } from './reliability-support.js';

// Every instance listens for revocations on a Redis subscriber connection. After a reconnect,
// Redis may refuse or stall the SUBSCRIBE (an ACL change, an overloaded server). ioredis's own
// resubscribe left that rejection unhandled, which ends a Node process, and never tried again.
// A refusal is the deterministic way to get there; a timeout takes the same path.

const redisServer = new RedisServer();
let redis: RedisProbe;

before(async () => {
  await redisServer.start();
  redis = new RedisProbe(redisServer.url);
});
after(async () => {
  redis?.close();
  await redisServer.stop();
});

/** Polls `probe` every 50 ms until it returns something, or fails naming `what`. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 5000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${limitMs} ms`);
    await sleep(50);
  }
}

/** The apps' connections that are subscribed to something, when there are `count` of them. */
async function subscribedConnections(count: number) {
  const subscribed = (await redis.appClients()).filter((client) => Number(client.sub) > 0);
  return subscribed.length === count ? subscribed : undefined;
}

for (const adapter of ADAPTERS) {
  describe(`revocation channel refused after a reconnect (${adapter})`, () => {
    let first: RunningApp;
    let second: RunningApp;

    before(async () => {
      const options = storeOptions(testEnv().mysqlUrl, redisServer.url);
      first = await startReliabilityApp(adapter, options);
      second = await startReliabilityApp(adapter, options);
    });
    after(async () => {
      await redis.client.call('ACL', 'SETUSER', 'default', 'allchannels');
      await closeApp(first);
      await closeApp(second);
    });

    it('the apps keep running with no unhandled rejection, and the next reconnect delivers revocations at once again', async () => {
      const unhandled: unknown[] = [];
      const record = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', record);
      try {
        await eventually('both instances subscribing at boot', () => subscribedConnections(2));

        // Redis drops the subscribers of channels they may no longer use; their reconnects are refused SUBSCRIBE.
        await redis.client.call('ACL', 'SETUSER', 'default', 'resetchannels');
        const refused = await eventually('two refused SUBSCRIBEs', async () => {
          const clients = (await redis.appClients()).filter((client) => client.cmd === 'subscribe' && client.sub === '0');
          return clients.length === 2 ? clients : undefined;
        });
        // The refusals reached the apps before this probe's reply did; give their promises a turn to settle.
        await sleep(100);
        assert.deepEqual(unhandled.map(String), []);
        assert.equal((await new SessionClient(first.url).post('/claims', { role: 'reader' })).status, 200, 'the app still serves');

        await redis.client.call('ACL', 'SETUSER', 'default', 'allchannels');
        for (const { id } of refused) await redis.client.client('KILL', 'ID', id);
        await eventually('both instances subscribing again after their reconnect', () => subscribedConnections(2));

        const client = new SessionClient(first.url);
        await client.post('/claims', { role: 'admin' });
        const onSecond = new SessionClient(second.url, 'cookie', client.token);
        assert.deepEqual((await onSecond.get('/claims')).body, { claims: { role: 'admin' } });
        await client.post('/life/destroy');
        await eventually('the other instance refusing the destroyed session', async () => {
          const { body } = await onSecond.fork().get('/claims');
          return JSON.stringify(body) === JSON.stringify({ claims: {} }) || undefined;
        }, 1000);
        assert.deepEqual(unhandled.map(String), []);
      } finally {
        process.off('unhandledRejection', record);
      }
    });
  });
}
