import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { EzSessionService, type EzSessionModuleOptions } from '../../lib/index.js';
import { SessionRepository } from '../../lib/storage/session.repository.js';
import { DevicesController } from '../fixtures/devices.controller.js';
import { ADAPTERS, startFixtureApp, type AdapterName, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { GaleraCluster } from '../support/galera-cluster.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { testEnv } from '../support/test-env.js';

// One cluster for the whole file (it takes ~15 s to start); every test has its own timeout, so a
// stuck node fails that test instead of hanging the run, and every client is closed in after().
const cluster = new GaleraCluster();
const STATEMENT_MS = 5000;

/** Three instances sharing one table, one Redis and one key prefix, instance i on node i. */
async function startInstances(adapter: AdapterName, overrides: Partial<EzSessionModuleOptions> = {}): Promise<{ apps: RunningApp[]; options: EzSessionModuleOptions }> {
  const options = realStoreOptions({ lockTimeout: STATEMENT_MS / 1000, revocationSyncInterval: 0, ...overrides });
  const apps: RunningApp[] = [];
  try {
    // One after the other: the first creates the table, replicated to the others before they look.
    for (let i = 0; i < 3; i++) apps.push(await startFixtureApp(adapter, { ...options, database: { type: 'mysql', url: cluster.url(i) } }));
  } catch (error) {
    await Promise.all(apps.map((app) => app.close()));
    throw error;
  }
  return { apps, options };
}

/** The `n` of the session's row, read on node `i` after it has applied every committed write. */
async function storedOn(i: number, table: string, sid: string): Promise<Record<string, unknown>> {
  const connection = await createConnection(cluster.url(i));
  try {
    const [rows] = await connection.query<RowDataPacket[]>(`SET STATEMENT wsrep_sync_wait = 1 FOR SELECT data FROM ${table} WHERE sid = ?`, [sid]);
    return JSON.parse(rows[0].data);
  } finally {
    await connection.end();
  }
}

const statuses = (answers: Array<{ status: number }>) => answers.map((answer) => answer.status);

before(() => cluster.start(), { timeout: 90_000 });
after(() => cluster.stop(), { timeout: 60_000 });

for (const adapter of ADAPTERS) {
  describe(`the session cap across two Galera nodes (${adapter})`, () => {
    const options = realStoreOptions({ bind: { userAgent: false }, userId: { session: 'userId' }, maxSessionsPerUser: 3, lockTimeout: STATEMENT_MS / 1000, revocationSyncInterval: 0 });
    const apps: RunningApp[] = [];

    before(async () => {
      // One after the other: the first creates the table, replicated to the other node before it looks.
      for (let i = 0; i < 2; i++) apps.push(await startFixtureApp(adapter, { ...options, database: { type: 'mysql', url: cluster.url(i) } }, { controllers: [DevicesController] }));
    }, { timeout: 60_000 });
    after(async () => {
      await Promise.all(apps.map((app) => app.close()));
    }, { timeout: 30_000 });

    it('20 logins of one user at once, alternately through two nodes, leave exactly 3 live sessions (the per-user lock is a lease, not a node-local GET_LOCK)', { timeout: 60_000 }, async () => {
      const userId = `galera-cap-${adapter}`;
      const clients = Array.from({ length: 20 }, (_, i) => new SessionClient(apps[i % 2].url));
      const answers = await Promise.all(clients.map((client) => client.post('/devices/login', { userId })));
      assert.deepEqual(statuses(answers), Array(20).fill(200));
      const connection = await createConnection(cluster.url(2));
      try {
        const [rows] = await connection.query<RowDataPacket[]>(
          `SET STATEMENT wsrep_sync_wait = 1 FOR SELECT sid FROM ${options.tableName} WHERE user_id = ? AND expires_at > ?`,
          [userId, Date.now()]
        );
        assert.equal(rows.length, 3);
      } finally {
        await connection.end();
      }
    });
  });
}

for (const adapter of ADAPTERS) {
  describe(`two instances on two Galera nodes, one Redis (${adapter})`, () => {
    let apps: RunningApp[] = [];
    let options: EzSessionModuleOptions;
    let redis: Redis;

    before(async () => {
      ({ apps, options } = await startInstances(adapter));
      redis = new Redis(testEnv().redisUrl);
    }, { timeout: 60_000 });
    after(async () => {
      redis?.disconnect();
      await Promise.all(apps.map((app) => app.close()));
    });

    it('sees the Galera node at boot and locks with a lease in Redis', { timeout: 10_000 }, () => {
      for (const app of apps) assert.equal(app.app.get(SessionRepository).lockKind, 'redis');
      assert.deepEqual(apps.flatMap((app) => app.logs.filter((line) => /Galera/.test(line))), []);
    });

    it('warns at boot of GET_LOCK on Galera without Redis, and of an eviction slower than a statement', { timeout: 30_000 }, async () => {
      const alone = await startFixtureApp(adapter, { ...options, redis: undefined, lockTimeout: 2, database: { type: 'mysql', url: cluster.url(0) } });
      try {
        assert.equal(alone.app.get(SessionRepository).lockKind, 'mysql');
        assert.ok(alone.logs.some((line) => /Galera cluster node and no redis option is set: session locks use GET_LOCK/.test(line)), alone.logs.join('\n'));
        assert.ok(alone.logs.some((line) => /evs\.suspect_timeout = 3s/.test(line)), alone.logs.join('\n'));
      } finally {
        await alone.close();
      }
    });

    it('30 locked increments of one session, alternately through two nodes: all acknowledged, and the session holds exactly 30', { timeout: 60_000 }, async () => {
      const one = new SessionClient(apps[0].url);
      await one.post('/set', { start: true });
      const clients = [one, new SessionClient(apps[1].url, 'cookie', one.token)];
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => clients[i % 2].fork().post('/inc')));
      assert.deepEqual(statuses(answers), Array(30).fill(200));
      assert.deepEqual([...answers.map((answer) => answer.body.n)].sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i + 1));
      assert.equal((await clients[1].get('/me')).body.data.n, 30);
      assert.equal((await storedOn(2, options.tableName!, claimsOf(one.token).sid)).n, 30);
    });

    it('24 parallel writers of different keys of one session through two nodes: no 5xx, every key present, conflicts retried and counted', { timeout: 90_000 }, async () => {
      // Certification conflicts between the nodes come when writes of the two instances overlap:
      // rounds go on until one has been seen (each round must be all 200 with every key present).
      const services = apps.slice(0, 2).map((app) => app.app.get(EzSessionService));
      const conflicts = () => services.reduce((sum, service) => sum + service.metrics().conflictRetries, 0);
      const initial = conflicts();
      for (let round = 0; round < 10 && conflicts() === initial; round++) {
        const one = new SessionClient(apps[0].url);
        await one.post('/set', { round });
        const clients = [one, new SessionClient(apps[1].url, 'cookie', one.token)];
        const answers = await Promise.all(Array.from({ length: 24 }, (_, i) => clients[i % 2].fork().post('/set', { [`k${i}`]: i })));
        assert.deepEqual(statuses(answers), Array(24).fill(200));
        const data = (await clients[1].get('/me')).body.data;
        for (let i = 0; i < 24; i++) assert.equal(data[`k${i}`], i, `k${i} of round ${round}`);
      }
      assert.ok(conflicts() > initial, 'no certification conflict in 10 rounds: the writes of the two nodes never overlapped');
      for (const service of services) assert.ok(service.metrics().writes > 0);
    });

    it('a read after a cache loss, through the other node, never returns older data (40 tries)', { timeout: 60_000 }, async () => {
      const one = new SessionClient(apps[0].url);
      await one.post('/set', { v: -1 });
      const key = `${options.keyPrefix}${claimsOf(one.token).sid}`;
      const two = new SessionClient(apps[1].url, 'cookie', one.token);
      const stale: number[] = [];
      for (let v = 0; v < 40; v++) {
        const writer = v % 2 === 0 ? one : two;
        const reader = v % 2 === 0 ? two : one;
        assert.equal((await writer.post('/set', { v })).status, 200);
        await redis.del(key);
        const read = (await reader.get('/me')).body.data.v;
        if (read !== v) stale.push(v);
      }
      assert.deepEqual(stale, []);
    });

    it('a paused node: its instance fails fast with 503, the others keep writing, and it recovers by itself once resumed', { timeout: 90_000 }, async () => {
      await assertNodeLoss(apps, 'pause');
    });

    it('a killed node: its instance fails fast with 503, the others keep writing, and it recovers by itself once the node rejoins', { timeout: 120_000 }, async () => {
      await assertNodeLoss(apps, 'kill');
    });
  });
}

/**
 * Node 3 paused (SIGSTOP) or killed while writers on nodes 1 and 2 keep writing: every write there
 * is acknowledged (none lost, none 5xx: the survivors evict the silent node within the statement
 * time); the instance on node 3 answers 503 within the statement time, never hangs; once the node
 * is back in the cluster that instance writes again, and every acknowledged value is stored.
 */
async function assertNodeLoss(apps: RunningApp[], how: 'pause' | 'kill'): Promise<void> {
  const survivors = [new SessionClient(apps[0].url), new SessionClient(apps[1].url)];
  for (const client of survivors) assert.equal((await client.post('/set', { w: 0 })).status, 200);
  const lost = new SessionClient(apps[2].url);
  assert.equal((await lost.post('/set', { w: 0 })).status, 200);
  const node = cluster.nodes[2];
  if (how === 'pause') node.pause();
  else await node.kill();
  try {
    const acknowledged = [0, 0];
    const failures: string[] = [];
    const started = performance.now();
    // Writes on the survivors for 4 s (past the eviction), each sent as soon as the last answered.
    await Promise.all(
      survivors.map(async (client, i) => {
        for (let w = 1; performance.now() - started < 4000; w++) {
          const answer = await client.post('/set', { w });
          if (answer.status === 200) acknowledged[i] = w;
          else failures.push(`${i}: ${answer.status} ${JSON.stringify(answer.body)}`);
        }
      })
    );
    assert.deepEqual(failures, []);
    const sent = performance.now();
    const answer = await lost.post('/set', { w: 1 });
    const tookMs = performance.now() - sent;
    assert.equal(answer.status, 503);
    assert.ok(tookMs < STATEMENT_MS * 2 + 1000, `the instance on the lost node answered after ${Math.round(tookMs)} ms`);
    for (const [i, client] of survivors.entries()) assert.equal((await client.get('/me')).body.data.w, acknowledged[i]);
    assert.ok(acknowledged.every((w) => w > 0));
  } finally {
    if (how === 'pause') node.resume();
    else await cluster.rejoin(2);
  }
  await cluster.waitForSize(3);
  // The instance on node 3 recovers without a restart: its pool reconnects on its own.
  let recovered = 0;
  for (let attempt = 0; attempt < 100 && recovered === 0; attempt++) {
    if ((await lost.post('/set', { w: 2 })).status === 200) recovered = attempt + 1;
    else await sleep(100);
  }
  assert.ok(recovered > 0, 'the instance on the node that came back did not write again within 100 tries');
  assert.equal((await new SessionClient(apps[0].url, 'cookie', lost.token).get('/me')).body.data.w, 2);
}
