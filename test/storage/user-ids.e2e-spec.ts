import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EzSessionService, type EzSessionModuleOptions } from '../../lib/index.js';
import { ADAPTERS, startFixtureApp, TEST_SECRET, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';

// User ids are compared byte for byte on both stores: MariaDB (VARBINARY) and the embedded SQLite.
const STORES: Array<[string, () => EzSessionModuleOptions]> = [
  ['MariaDB', () => realStoreOptions({ userId: { session: 'userId' } })],
  ['sql.js', () => ({ secret: TEST_SECRET, database: { type: 'sqljs' }, userId: { session: 'userId' } })]
];

for (const adapter of ADAPTERS) {
  for (const [store, options] of STORES) {
    describe(`user ids compare byte for byte (${store}, ${adapter})`, () => {
      let running: RunningApp;
      before(async () => (running = await startFixtureApp(adapter, options())));
      after(async () => running?.close());

      const service = () => running.app.get(EzSessionService);
      /** A fresh prefix per test, so ids of one test never meet another's. */
      const tag = () => Math.random().toString(36).slice(2, 8);
      async function loggedIn(userId: string): Promise<SessionClient> {
        const client = new SessionClient(running.url);
        const answer = await client.post('/set', { userId });
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        return client;
      }
      const sids = async (userId: string) => (await service().listForUser(userId)).map((session) => session.sid).sort();

      it("revokeAllForUser('alice ') and ('alice') leave Alice's sessions alone; listForUser('zoe') does not list Zoë's", async () => {
        const t = tag();
        const alice = await Promise.all(Array.from({ length: 3 }, () => loggedIn(`Alice${t}`)));
        const zoe = await loggedIn(`Zoë${t}`);
        assert.equal(await service().revokeAllForUser(`alice${t} `), 0);
        assert.equal(await service().revokeAllForUser(`alice${t}`), 0);
        assert.equal(await service().revokeAllForUser(`ALICE${t}`), 0);
        assert.equal(await service().revokeAllForUser(`Alice${t} `), 0);
        for (const client of alice) assert.deepEqual((await client.get('/me')).body, { data: { userId: `Alice${t}` } });
        assert.deepEqual(await sids(`zoe${t}`), []);
        assert.deepEqual(await sids(`Zoe${t}`), []);
        assert.deepEqual(await sids(`Zoë${t}`), [claimsOf(zoe.token).sid]);
        // Zoë in decomposed form (o + U+0308) is other bytes: another id.
        assert.deepEqual(await sids(`Zoe\u0308${t}`), []);
        assert.equal(await service().revokeAllForUser(`Alice${t}`), 3);
        for (const client of alice) assert.deepEqual((await client.get('/me')).body, { data: {} });
      });

      it('any Unicode id logs in and is found again: 中, 😀, and ids that differ only in the last byte', async () => {
        const t = tag();
        for (const userId of [`中${t}`, `😀${t}`, `user${t}\u00a0`, `𝔘𝔫𝔦𝔠𝔬𝔡𝔢${t}`]) {
          const client = await loggedIn(userId);
          assert.deepEqual((await client.get('/me')).body, { data: { userId } });
          assert.deepEqual(await sids(userId), [claimsOf(client.token).sid]);
        }
        assert.deepEqual(await sids(`user${t}`), []);
        assert.deepEqual(await sids(`user${t} `), []);
      });

      it('an id of 255 bytes is stored whole; one byte more is refused with 422 naming the limit, and nothing is written', async () => {
        const t = tag();
        const fits = `${t}${'é'.repeat(100)}${'x'.repeat(255 - t.length - 200)}`;
        assert.equal(Buffer.byteLength(fits), 255);
        const stored = await loggedIn(fits);
        assert.deepEqual(await sids(fits), [claimsOf(stored.token).sid]);

        for (const tooLong of [`${fits}x`, `${fits.slice(0, -1)}é`]) {
          const client = new SessionClient(running.url);
          const refused = await client.post('/set', { userId: tooLong });
          assert.equal(refused.status, 422);
          assert.equal(refused.body.error, 'SessionDataError');
          assert.equal(refused.body.code, 'SESSION_DATA_INVALID');
          assert.match(refused.body.message, /^The user id in session\.userId is 256 bytes as UTF-8, over the 255 a user id may have/);
          assert.equal(refused.issued, undefined);
          // Two ids that share their first 255 bytes were never merged into one.
          assert.deepEqual(await sids(tooLong), []);
        }
        assert.deepEqual(await sids(fits), [claimsOf(stored.token).sid]);
      });
    });
  }
}

for (const adapter of ADAPTERS) {
  describe(`a user id in a claim (${adapter})`, () => {
    let running: RunningApp;
    before(async () => (running = await startFixtureApp(adapter, realStoreOptions({ userId: { claim: 'uid' } }))));
    after(async () => running?.close());

    it('a claim over 255 bytes is refused with 422 naming the limit, even when nothing is stored', async () => {
      const client = new SessionClient(running.url);
      const refused = await client.post('/claims', { uid: 'u'.repeat(256) });
      assert.equal(refused.status, 422);
      assert.equal(refused.body.code, 'SESSION_CLAIM_INVALID');
      assert.match(refused.body.message, /^The user id in the claim "uid" is 256 bytes as UTF-8, over the 255/);
      assert.equal(refused.issued, undefined);
      assert.equal((await client.post('/claims', { uid: '😀'.repeat(63) })).status, 200);
    });
  });
}
