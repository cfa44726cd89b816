import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { EzSessionModuleOptions } from '../../lib/index.js';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { pollUntil } from '../support/poll.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { testEnv } from '../support/test-env.js';

// `lockVia: 'redis'` on one MariaDB: what the row version fence does when a lease is lost while
// its holder still runs (here deleted by hand, as a Redis failover that lost the key would).
for (const adapter of ADAPTERS) {
  describe(`the Redis lease lock, fenced by the row version (${adapter})`, () => {
    let one: RunningApp;
    let two: RunningApp;
    let options: EzSessionModuleOptions;
    let redis: Redis;

    before(async () => {
      options = realStoreOptions({ lockVia: 'redis' });
      one = await startFixtureApp(adapter, options);
      two = await startFixtureApp(adapter, options);
      redis = new Redis(testEnv().redisUrl);
    }, { timeout: 30_000 });
    after(async () => {
      redis?.disconnect();
      await Promise.all([one?.close(), two?.close()]);
    });

    it('a holder whose lease was lost answers 503 SESSION_LOCK_LOST and writes nothing; the session holds exactly what was acknowledged', { timeout: 30_000 }, async () => {
      const first = new SessionClient(one.url);
      await first.post('/set', { n: 0 });
      const lockKey = `${options.keyPrefix}lock:${claimsOf(first.token).sid}`;
      // The first increment holds its lease for 1.5 s before it writes.
      const slow = first.fork().post('/inc-after-pause');
      await pollUntil('the slow increment to hold its lease', async () => ((await redis.exists(lockKey)) === 1 ? true : undefined), { timeoutMs: 5000, intervalMs: 5 });
      await redis.del(lockKey);
      const fast = await new SessionClient(two.url, 'cookie', first.token).post('/inc');
      const slowAnswer = await slow;
      const answers = [slowAnswer, fast];
      const acknowledged = answers.filter((answer) => answer.status === 200).length;
      // Whichever of the two wrote second saw the other's write under a lock it no longer had.
      assert.deepEqual(answers.map((answer) => answer.status).sort(), [200, 503]);
      const refused = answers.find((answer) => answer.status === 503)!;
      assert.equal(refused.body.error, 'SessionLockLost');
      assert.equal((await new SessionClient(one.url, 'cookie', first.token).get('/me')).body.data.n, acknowledged);
    });

    it('an unlocked write of another key while the lease is held is merged onto, not refused', { timeout: 30_000 }, async () => {
      const first = new SessionClient(one.url);
      await first.post('/set', { n: 0 });
      const lockKey = `${options.keyPrefix}lock:${claimsOf(first.token).sid}`;
      const slow = first.fork().post('/inc-after-pause');
      await pollUntil('the slow increment to hold its lease', async () => ((await redis.exists(lockKey)) === 1 ? true : undefined), { timeoutMs: 5000, intervalMs: 5 });
      assert.equal((await new SessionClient(two.url, 'cookie', first.token).post('/set', { other: 'x' })).status, 200);
      assert.equal((await slow).status, 200);
      assert.deepEqual((await first.get('/me')).body.data, { n: 1, other: 'x' });
    });
  });
}
