import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADAPTERS, type RunningApp } from '../fixtures/fixture-app.js';
import { testEnv } from '../support/test-env.js';
import { startReliabilityApp } from './reliability-app.js';
import { BoundedClient, closeApp, MySqlProbe, RedisProbe, sidOf, storeOptions, type Outcome } from './reliability-support.js';

// A pool of 2 MySQL connections, a 1 s lock timeout, and many parallel requests on different
// sessions: every request answers 2xx or a clear 503 within a bound of three lock timeouts, and
// exactly the acknowledged writes are stored. Shared MariaDB and Redis: no server is stopped.

const LOCK_TIMEOUT_S = 1;
const BOUND_MS = 3 * LOCK_TIMEOUT_S * 1000;
const BUSY_ERRORS = ['SessionLockTimeout', 'SessionStoreUnavailable'];

for (const adapter of ADAPTERS) {
  describe(`pool exhaustion (${adapter})`, () => {
    let running: RunningApp;
    let mysql: MySqlProbe;
    let redis: RedisProbe;
    const options = storeOptions(testEnv().mysqlUrl, testEnv().redisUrl, {
      lockTimeout: LOCK_TIMEOUT_S,
      database: { type: 'mysql', url: testEnv().mysqlUrl, poolSize: 2 }
    });

    before(async () => {
      running = await startReliabilityApp(adapter, options);
      mysql = await MySqlProbe.open(testEnv().mysqlUrl, options.tableName);
      redis = new RedisProbe(testEnv().redisUrl);
    });
    after(async () => {
      await closeApp(running);
      await mysql?.close();
      redis?.close();
    });

    async function storedClients(count: number, data: (i: number) => Record<string, unknown>): Promise<BoundedClient[]> {
      const clients: BoundedClient[] = [];
      for (let i = 0; i < count; i++) {
        const client = new BoundedClient(running.url, BOUND_MS);
        assert.equal((await client.post('/set', data(i))).status, 200);
        clients.push(client);
      }
      return clients;
    }

    /** Fails unless every outcome is a 2xx or a 503 naming why; returns whether each one was acknowledged. */
    function assertAnswered(outcomes: Outcome[], what: string): boolean[] {
      const hung = outcomes.filter((outcome) => outcome === 'hung').length;
      assert.equal(hung, 0, `${hung} of ${outcomes.length} ${what} did not answer within ${BOUND_MS} ms`);
      return (outcomes as Exclude<Outcome, 'hung'>[]).map((response) => {
        if (response.status >= 200 && response.status < 300) return true;
        assert.equal(response.status, 503, `${what}: ${response.status} ${JSON.stringify(response.body)}`);
        assert.ok(BUSY_ERRORS.includes(response.body.error), `${what}: ${JSON.stringify(response.body)}`);
        return false;
      });
    }

    it('60 parallel writes and locked increments on 30 sessions each answer 2xx or 503, and exactly the acknowledged ones are stored', async () => {
      const clients = await storedClients(30, (i) => ({ i }));
      const sets = clients.map((client, i) => client.settle(client.post('/set', { w: i })));
      const incs = clients.map((client) => client.settle(client.post('/inc')));
      const setAcks = assertAnswered(await Promise.all(sets), 'writes');
      const incAcks = assertAnswered(await Promise.all(incs), 'locked increments');
      for (const [i, client] of clients.entries()) {
        const stored = await mysql.data(sidOf(client.token));
        assert.equal(stored?.w, setAcks[i] ? i : undefined, `session ${i}: write acknowledged=${setAcks[i]}`);
        assert.equal(stored?.n, incAcks[i] ? 1 : undefined, `session ${i}: increment acknowledged=${incAcks[i]}`);
        assert.equal(stored?.i, i);
      }
    });

    it('slow locked handlers holding every pooled connection: other sessions get 2xx or 503 within the bound, never a hang', async () => {
      const holders = await storedClients(12, () => ({ n: 0 }));
      const others = await storedClients(8, (i) => ({ other: i }));
      // Half of the other sessions are not in the cache, so reading them needs a pooled connection too.
      for (const client of others.slice(0, 4)) await redis.client.del(options.keyPrefix + sidOf(client.token));

      const holds = holders.map((client) => client.settle(client.post('/r/hold/700')));
      const writes = others.map((client, i) => client.settle(client.post('/set', { during: i })));
      const reads = others.map((client) => client.settle(client.get('/me')));

      const holdAcks = assertAnswered(await Promise.all(holds), 'slow locked handlers');
      const writeAcks = assertAnswered(await Promise.all(writes), 'writes on other sessions');
      assertAnswered(await Promise.all(reads), 'reads on other sessions');
      for (const [i, client] of holders.entries()) {
        assert.deepEqual(await mysql.data(sidOf(client.token)), { n: holdAcks[i] ? 1 : 0 }, `slow handler ${i}`);
      }
      for (const [i, client] of others.entries()) {
        const expected = writeAcks[i] ? { other: i, during: i } : { other: i };
        assert.deepEqual(await mysql.data(sidOf(client.token)), expected, `write ${i}`);
      }
    });

    it('while two locked handlers hold both pooled connections for longer than the bound, reads and writes of other sessions still answer within it', async () => {
      const holdMs = 4 * LOCK_TIMEOUT_S * 1000;
      const holders = (await storedClients(2, () => ({ n: 0 }))).map((client) => new BoundedClient(running.url, BOUND_MS + holdMs, 'cookie', client.token));
      const others = await storedClients(6, (i) => ({ other: i }));
      for (const client of others) await redis.client.del(options.keyPrefix + sidOf(client.token));

      const holds = holders.map((client) => client.settle(client.post(`/r/hold/${holdMs}`)));
      await new Promise((resolve) => setTimeout(resolve, 200)); // both connections are taken
      const reads = others.slice(0, 3).map((client) => client.settle(client.get('/me')));
      const writes = others.slice(3).map((client, i) => client.settle(client.post('/set', { during: i })));

      const [readOutcomes, writeOutcomes, holdOutcomes] = await Promise.all([Promise.all(reads), Promise.all(writes), Promise.all(holds)]);
      assertAnswered(readOutcomes, 'reads of other sessions (not cached)');
      assertAnswered(writeOutcomes, 'writes on other sessions');
      assertAnswered(holdOutcomes, 'slow locked handlers');
    });

    it('after the burst, every session is served normally again', async () => {
      const clients = await storedClients(4, (i) => ({ i }));
      await Promise.all(clients.map((client) => client.settle(client.post('/r/hold/300'))));
      for (const [i, client] of clients.entries()) {
        assert.equal((await client.post('/inc')).status, 200);
        assert.equal((await client.get('/me')).body.data.i, i);
      }
    });
  });
}
