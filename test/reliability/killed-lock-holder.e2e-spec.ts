import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, afterEach, before, describe, it } from 'node:test';
import { ADAPTERS, type RunningApp } from '../fixtures/fixture-app.js';
import { testEnv } from '../support/test-env.js';
import { lockName } from '../../lib/storage/session.repository.js';
import { startReliabilityApp } from './reliability-app.js';
import { BoundedClient, closeApp, killChild, MySqlProbe, sidOf, spawnLockHolder, storeOptions } from './reliability-support.js';

// Another process (an app instance, a script) takes a session's MySQL lock on its own connection
// and is SIGKILLed while holding it. MySQL frees the lock when it notices the connection is gone;
// the session must not stay blocked beyond that. Shared MariaDB and Redis: no server is stopped.

const LOCK_TIMEOUT_S = 3;

for (const adapter of ADAPTERS) {
  describe(`a process killed while holding a session lock (${adapter})`, () => {
    let running: RunningApp;
    let mysql: MySqlProbe;
    let holder: ChildProcess | undefined;
    const options = storeOptions(testEnv().mysqlUrl, testEnv().redisUrl, { lockTimeout: LOCK_TIMEOUT_S });

    before(async () => {
      running = await startReliabilityApp(adapter, options);
      mysql = await MySqlProbe.open(testEnv().mysqlUrl, options.tableName);
    });
    after(async () => {
      await closeApp(running);
      await mysql?.close();
    });
    afterEach(async () => {
      if (holder) await killChild(holder);
      holder = undefined;
    });

    /** Bound of two lock timeouts: a request that waits out the whole lock timeout still answers inside it. */
    async function counterClient(): Promise<BoundedClient> {
      const client = new BoundedClient(running.url, 2 * LOCK_TIMEOUT_S * 1000);
      assert.deepEqual((await client.post('/inc')).body, { n: 1 });
      return client;
    }

    it('killed while idle: the next request on that session takes the lock and its write lands', async () => {
      const client = await counterClient();
      const sid = sidOf(client.token);
      holder = await spawnLockHolder(testEnv().mysqlUrl, sid);
      assert.equal(await mysql.isFreeLock(lockName(sid)), false, 'the other process holds the lock');
      await killChild(holder);
      const outcome = await client.settle(client.post('/inc'));
      if (outcome === 'hung') assert.fail('the request did not answer');
      assert.equal(outcome.status, 200);
      assert.deepEqual(outcome.body, { n: 2 });
      assert.deepEqual(await mysql.data(sid), { n: 2 });
      assert.equal(await mysql.isFreeLock(lockName(sid)), true, 'and the app released it again');
    });

    it('killed while idle: an unlocked write on that session lands too', async () => {
      const client = await counterClient();
      const sid = sidOf(client.token);
      holder = await spawnLockHolder(testEnv().mysqlUrl, sid);
      await killChild(holder);
      const outcome = await client.settle(client.post('/set', { after: 'kill' }));
      if (outcome === 'hung') assert.fail('the request did not answer');
      assert.equal(outcome.status, 200);
      assert.deepEqual(await mysql.data(sid), { n: 1, after: 'kill' });
    });

    it('killed in the middle of a statement: the next request waits until MySQL frees the lock, then proceeds', async () => {
      const client = await counterClient();
      const sid = sidOf(client.token);
      // MySQL notices the dead client only when its running statement (SLEEP 1.5 s) ends.
      holder = await spawnLockHolder(testEnv().mysqlUrl, sid, 1.5);
      await killChild(holder);
      const outcome = await client.settle(client.post('/inc'));
      if (outcome === 'hung') assert.fail('the request did not answer');
      assert.equal(outcome.status, 200, JSON.stringify(outcome.body));
      assert.deepEqual(outcome.body, { n: 2 });
    });

    it('while the lock is still held by the live process, a request answers 503 SessionLockTimeout and writes nothing', async () => {
      const client = await counterClient();
      const sid = sidOf(client.token);
      holder = await spawnLockHolder(testEnv().mysqlUrl, sid);
      const outcome = await client.settle(client.post('/inc'));
      if (outcome === 'hung') assert.fail('the request did not answer');
      assert.equal(outcome.status, 503);
      assert.equal(outcome.body.error, 'SessionLockTimeout');
      assert.deepEqual(await mysql.data(sid), { n: 1 });
      await killChild(holder);
      assert.deepEqual((await client.post('/inc')).body, { n: 2 });
    });
  });
}
