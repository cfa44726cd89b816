import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { EzSessionService } from '../../lib/index.js';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { MariaDbReplication } from '../support/mariadb-replication.js';
import { OpenResources } from '../support/open-resources.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { testEnv } from '../support/test-env.js';
import { TIMEOUTS } from '../support/topology-timeouts.js';

// A TypeORM DataSource with replication (a primary and a replica) reads from the replica by
// default; a session must never be read from a replica that may lag behind the last write.
for (const adapter of ADAPTERS) {
  describe(`a replicated MySQL (${adapter})`, { timeout: TIMEOUTS.suite }, () => {
    const replication = new MariaDbReplication();
    const open = new OpenResources();
    let running: RunningApp;
    let options: ReturnType<typeof realStoreOptions>;

    before(async () => {
      open.add(replication, (servers) => servers.stop());
      await replication.start();
      options = realStoreOptions({
        database: { type: 'mysql', replication: { master: { url: replication.primaryUrl }, slaves: [{ url: replication.replicaUrl }] } },
        userId: { session: 'userId' }
      });
      running = open.add(await startFixtureApp(adapter, options), (app) => app.close());
    }, { timeout: TIMEOUTS.hook });
    after(() => open.closeAll(), { timeout: TIMEOUTS.hook });

    it('sends no session statement to the replica: reads, writes, locks, regenerate, destroy, revoke, listing and GC all go to the primary', { timeout: TIMEOUTS.test }, async () => {
      const service = running.app.get(EzSessionService);
      const redis = open.add(new Redis(testEnv().redisUrl), (client) => client.disconnect());
      redis.on('error', () => undefined); // failures surface through the commands
      const { result: client, statements } = await replication.replicaClientStatements(async () => {
        const user = new SessionClient(running.url);
        await user.post('/set', { userId: 7 }); // first write
        await user.post('/set', { cart: ['apple'] }); // later write
        await redis.del(`${options.keyPrefix}${claimsOf(user.token).sid}`);
        assert.deepEqual((await user.get('/me')).body.data, { userId: 7, cart: ['apple'] }); // a cache miss: the row
        await user.post('/inc'); // the lock
        await user.post('/life/regenerate');
        assert.equal((await service.listForUser(7)).length, 1);
        assert.ok((await service.countActive()) >= 1);
        assert.ok(await service.read(claimsOf(user.token).sid));
        const other = new SessionClient(running.url);
        await other.post('/set', { userId: 8 });
        await service.revoke(claimsOf(other.token).sid);
        const leaving = new SessionClient(running.url);
        await leaving.post('/set', { a: 1 });
        await leaving.post('/life/destroy');
        await service.gc();
        return user;
      });
      assert.equal(statements, 0);
      // The replica was live all along: what the primary stored reached it.
      await replication.waitForReplicaCatchUp();
      const replica = open.add(await createConnection(replication.replicaUrl), (connection) => connection.destroy());
      const [rows] = await replica.query<RowDataPacket[]>(`SELECT data FROM ${options.tableName} WHERE sid = ?`, [claimsOf(client.token).sid]);
      assert.deepEqual(JSON.parse(rows[0].data), { userId: 7, cart: ['apple'], n: 1 });
    });
  });
}
