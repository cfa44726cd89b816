import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createConnection, type Connection } from 'mysql2/promise';
import type { EzSessionModuleOptions } from '../../lib/index.js';
import { lockName } from '../../lib/storage/session.repository.js';
import { startApp, type RunningApp } from '../fixtures/fixture-app.js';
import { GRAPHQL_SERVERS, guardRuns, SessionReadingGuard, SessionResolver, type GraphQLServer } from '../fixtures/graphql.resolver.js';
import { cacheReads } from '../support/cache-reads.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { GraphQLClient } from '../support/graphql-client.js';
import { claimsOf } from '../support/session-client.js';
import { StorageCounters, type StorageUsage } from '../support/storage-counters.js';
import { readOnlyDatabaseUrl } from '../support/read-only-database.js';
import { testEnv } from '../support/test-env.js';

// Redis: the commands the app sent (round trips); a script's own GET and SET run inside Redis.
const io = (usage: StorageUsage) => ({ redis: usage.redis.sent, mysql: usage.mysql.queries });

/** Starts the resolver fixture on `server` for the suite it is called in, with storage counters beside it. */
function servedBy(server: GraphQLServer, overrides: Partial<EzSessionModuleOptions> = {}, options = realStoreOptions(overrides)) {
  let running: RunningApp;
  let counters: StorageCounters;
  before(async () => {
    running = await startApp(server.adapter, options, { imports: [server.module()], providers: [SessionResolver, SessionReadingGuard] });
    counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
  });
  after(async () => {
    await running?.close();
    await counters?.close();
  });
  return { running: () => running, counters: () => counters, options };
}

for (const server of GRAPHQL_SERVERS) {
  describe(`sessions in GraphQL operations (${server.name})`, () => {
    const { running, counters } = servedBy(server);

    async function signedIn(): Promise<GraphQLClient> {
      const client = new GraphQLClient(running().url);
      const login = await client.operation('mutation { login }');
      assert.deepEqual(login.body, { data: { login: true } });
      return client;
    }

    it('a login mutation stores the session and sends its token back as a cookie and a header', async () => {
      const client = new GraphQLClient(running().url);
      const login = await client.operation('mutation { login }');
      assert.equal(login.status, 200);
      assert.deepEqual(login.body, { data: { login: true } });
      assert.match(login.setCookie ?? '', /^ezsession=[^;]+; Max-Age=\d+; Path=\/; HttpOnly/);
      assert.equal(login.setCookie?.split(';')[0], `ezsession=${login.issued}`);
      assert.equal(claimsOf(login.issued).stored, true);
      assert.equal(claimsOf(login.issued).role, 'admin');
    });

    it('a query reads what the login stored, with the cookie or with a bearer token', async () => {
      const client = await signedIn();
      assert.deepEqual((await client.operation('{ userId role }')).body, { data: { userId: 42, role: 'admin' } });
      const bearer = new GraphQLClient(running().url, 'bearer', client.token);
      assert.deepEqual((await bearer.operation('{ userId role }')).body, { data: { userId: 42, role: 'admin' } });
    });

    it('a mutation from another origin with the cookie is refused with extensions.code SESSION_CSRF_REFUSED, and the session is untouched', async () => {
      const client = await signedIn();
      const cross = { 'sec-fetch-site': 'same-site', origin: 'http://evil.example.test' };
      const usage = await counters().measure(() => client.fork().operation('mutation { setKey(key: "userId", value: "attacker") }', undefined, cross));
      assert.equal(usage.result.body.data, null);
      assert.equal(usage.result.body.errors[0].extensions.code, 'SESSION_CSRF_REFUSED');
      assert.equal(usage.result.issued, undefined);
      assert.equal(usage.result.setCookie, undefined);
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
      const login = await new GraphQLClient(running().url).operation('mutation { login }', undefined, cross);
      assert.equal(login.body.errors[0].extensions.code, 'SESSION_CSRF_REFUSED', 'login CSRF');
      assert.equal(login.setCookie, undefined);
      assert.deepEqual((await client.operation('{ userId }')).body, { data: { userId: 42 } });
      assert.deepEqual((await client.operation('{ userId }', undefined, { 'sec-fetch-site': 'same-origin' })).body, { data: { userId: 42 } });
    });

    it('a query without a token sees an empty session and gets no token', async () => {
      const response = await new GraphQLClient(running().url).operation('{ userId role session }');
      assert.deepEqual(response.body, { data: { userId: null, role: null, session: '{}' } });
      assert.equal(response.issued, undefined);
      assert.equal(response.setCookie, undefined);
    });

    it('a query that does not ask for the session costs no storage I/O and sends no token', async () => {
      const client = await signedIn();
      const usage = await counters().measure(() => client.operation('{ ping }'));
      assert.deepEqual(usage.result.body, { data: { ping: 'pong' } });
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
      assert.equal(usage.result.issued, undefined);
    });

    it('a resolver that reads only the claims costs no storage I/O', async () => {
      const client = await signedIn();
      const usage = await counters().measure(() => client.operation('{ role }'));
      assert.deepEqual(usage.result.body, { data: { role: 'admin' } });
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
    });

    it('several resolvers and a guard reading a stored session share one Redis read, and nothing is written', async () => {
      const client = await signedIn();
      const runsBefore = guardRuns.count;
      const usage = await counters().measure(() => client.operation('{ userId session guardedSession }'));
      assert.deepEqual(usage.result.body, { data: { userId: 42, session: '{"userId":42}', guardedSession: '{"userId":42}' } });
      assert.equal(guardRuns.count, runsBefore + 1);
      assert.deepEqual(io(usage), { redis: cacheReads(1), mysql: 0 });
      assert.equal(usage.result.issued, undefined);
    });

    it('an operation with two mutations writes the session once, with both changes', async () => {
      const client = await signedIn();
      const one = await counters().measure(() => client.operation('mutation { setKey(key: "a", value: "1") }'));
      const two = await counters().measure(() => client.operation('mutation { b: setKey(key: "b", value: "2") c: setKey(key: "c", value: "3") }'));
      assert.deepEqual(two.result.body, { data: { b: true, c: true } });
      assert.deepEqual(io(two), io(one));
      assert.deepEqual(JSON.parse((await client.operation('{ session }')).body.data.session), { userId: 42, a: '1', b: '2', c: '3' });
    });

    it('a flash value set by one operation is read by the next, then gone', async () => {
      const client = new GraphQLClient(running().url);
      assert.deepEqual((await client.operation('mutation { flash(message: "saved") }')).body, { data: { flash: true } });
      assert.deepEqual((await client.operation('{ notice }')).body, { data: { notice: 'saved' } });
      assert.deepEqual((await client.operation('{ notice }')).body, { data: { notice: null } });
    });

    it('parallel mutations of different keys on one session all land', async () => {
      const client = await signedIn();
      const keys = ['k1', 'k2', 'k3', 'k4', 'k5'];
      const answers = await Promise.all(keys.map((key) => client.fork().operation('mutation ($key: String!) { setKeySlowly(key: $key, value: "v") }', { key })));
      for (const answer of answers) assert.deepEqual(answer.body, { data: { setKeySlowly: true } });
      const session = JSON.parse((await client.operation('{ session }')).body.data.session);
      assert.deepEqual(session, { userId: 42, k1: 'v', k2: 'v', k3: 'v', k4: 'v', k5: 'v' });
    });

    it('parallel locked increments on one session are exact', async () => {
      const client = await signedIn();
      const answers = await Promise.all(Array.from({ length: 8 }, () => client.fork().operation('mutation { increment }')));
      assert.deepEqual(answers.map((answer) => answer.body.data.increment).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8]);
    });

    it('a mutation whose resolver fails after changing the session keeps none of the change', async () => {
      const client = await signedIn();
      const failed = await client.operation('mutation { setThenFail }');
      assert.equal(failed.status, 200);
      assert.equal(failed.body.data, null);
      assert.match(failed.body.errors[0].message, /the resolver failed after changing the session/);
      assert.deepEqual(JSON.parse((await client.operation('{ session }')).body.data.session), { userId: 42 });
    });

    it('a login that regenerates through the GraphQL context gives a new id, and the pre-login token stops working', async () => {
      const client = new GraphQLClient(running().url);
      await client.operation('mutation { flash(message: "before") }');
      const before = client.fork();
      const signIn = await client.operation('mutation { signIn }');
      assert.deepEqual(signIn.body, { data: { signIn: true } });
      assert.notEqual(claimsOf(client.token).sid, claimsOf(before.token).sid);
      assert.deepEqual((await client.operation('{ userId }')).body, { data: { userId: 7 } });
      assert.deepEqual((await before.operation('{ userId notice }')).body, { data: { userId: null, notice: null } });
    });

    it('logout from a resolver destroys the session and clears the cookie', async () => {
      const client = await signedIn();
      const logout = await client.operation('mutation { logout }');
      assert.deepEqual(logout.body, { data: { logout: true } });
      assert.match(logout.setCookie ?? '', /^ezsession=; Max-Age=0/);
      assert.deepEqual((await client.operation('{ userId role }')).body, { data: { userId: null, role: null } });
    });
  });

  describe(`EzSessionGuard on resolvers (${server.name})`, () => {
    const { running, counters } = servedBy(server);

    it('refuses a missing claim with a GraphQL error coded UNAUTHENTICATED that names the claim, with no storage I/O', async () => {
      const client = new GraphQLClient(running().url);
      await client.operation('mutation { flash(message: "x") }');
      const usage = await counters().measure(() => client.operation('{ adminOnly }'));
      const [error] = usage.result.body.errors;
      assert.equal(usage.result.body.data, null);
      assert.equal(error.extensions.code, 'UNAUTHENTICATED');
      assert.deepEqual(error.extensions.missing, { keys: [], claims: ['role'] });
      assert.equal(error.message, 'This operation needs a session with claim "role"; sign in first.');
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
    });

    it('refuses a session not authenticated within freshWithin with a GraphQL error coded SESSION_NOT_FRESH, and lets it through once it is', async () => {
      const client = new GraphQLClient(running().url);
      await client.operation('mutation { login }');
      const [error] = (await client.operation('{ freshOnly }')).body.errors;
      assert.equal(error.extensions.code, 'SESSION_NOT_FRESH');
      assert.equal(error.extensions.freshWithin, 300);
      await client.operation('mutation { reauthenticate }');
      assert.deepEqual((await client.operation('{ freshOnly }')).body, { data: { freshOnly: 'fresh' } });
    });

    it('lets a session with the claim through, with no storage I/O', async () => {
      const client = new GraphQLClient(running().url);
      await client.operation('mutation { login }');
      const usage = await counters().measure(() => client.operation('{ adminOnly }'));
      assert.deepEqual(usage.result.body, { data: { adminOnly: 'secret' } });
      assert.deepEqual(io(usage), { redis: {}, mysql: 0 });
    });

    it('checks a required session key with one Redis read shared with the resolver', async () => {
      assert.equal((await new GraphQLClient(running().url).operation('{ membersOnly }')).body.errors[0].extensions.code, 'UNAUTHENTICATED');
      const client = new GraphQLClient(running().url);
      await client.operation('mutation { login }');
      const usage = await counters().measure(() => client.operation('{ membersOnly }'));
      assert.deepEqual(usage.result.body, { data: { membersOnly: 42 } });
      assert.deepEqual(io(usage), { redis: cacheReads(1), mysql: 0 });
    });
  });

  describe(`session errors as GraphQL errors (${server.name})`, () => {
    const { running, options } = servedBy(server, { lockTimeout: 0.5, maxSessionBytes: 4096 });
    let mysql: Connection;
    /** The same sessions through a database user that may read them but not write them: every commit fails. */
    let readOnly: RunningApp;

    before(async () => {
      mysql = await createConnection(testEnv().mysqlUrl);
      readOnly = await startApp(server.adapter, { ...options, database: { type: 'mysql', url: await readOnlyDatabaseUrl() }, createTable: false }, {
        imports: [server.module()],
        providers: [SessionResolver, SessionReadingGuard]
      });
    });
    after(async () => {
      await readOnly?.close();
      await mysql?.end();
    });

    async function withLockHeldElsewhere<T>(client: GraphQLClient, work: () => Promise<T>): Promise<T> {
      const name = lockName(claimsOf(client.token).sid);
      await mysql.query('SELECT GET_LOCK(?, 0)', [name]);
      try {
        return await work();
      } finally {
        await mysql.query('SELECT RELEASE_LOCK(?)', [name]);
      }
    }

    it('a lock timeout while a resolver loads its locked session is a SESSION_LOCK_TIMEOUT error saying when to retry', async () => {
      const client = new GraphQLClient(running().url);
      await client.operation('mutation { login }');
      const blocked = await withLockHeldElsewhere(client, () => client.operation('mutation { increment }'));
      assert.equal(blocked.status, 200);
      assert.equal(blocked.body.data, null);
      const [error] = blocked.body.errors;
      assert.equal(error.extensions.code, 'SESSION_LOCK_TIMEOUT');
      assert.equal(error.extensions.retryAfter, 1);
      assert.match(error.message, /lock was not obtained within 0.5s/);
      assert.equal(blocked.headers.get('retry-after'), '1');
      assert.equal(blocked.issued, undefined);
      assert.deepEqual(JSON.parse((await client.operation('{ session }')).body.data.session), { userId: 42 });
    });

    it('a commit the database refuses replaces the answer with a SESSION_STORE_UNAVAILABLE error, and nothing is written', async () => {
      const client = new GraphQLClient(running().url);
      await client.operation('mutation { login }');
      const refused = await new GraphQLClient(readOnly.url, 'cookie', client.token).operation('mutation { setKey(key: "a", value: "1") }');
      assert.equal(refused.status, 200);
      assert.equal(refused.body.data, null);
      assert.equal(refused.body.errors[0].extensions.code, 'SESSION_STORE_UNAVAILABLE');
      assert.equal(refused.issued, undefined);
      assert.equal(refused.setCookie, undefined);
      assert.deepEqual(JSON.parse((await client.operation('{ session }')).body.data.session), { userId: 42 });
    });

    it('a session over maxSessionBytes is a SESSION_TOO_LARGE error, with no token', async () => {
      const client = new GraphQLClient(running().url);
      const refused = await client.operation('mutation { setHuge }');
      assert.equal(refused.body.data, null);
      assert.equal(refused.body.errors[0].extensions.code, 'SESSION_TOO_LARGE');
      assert.match(refused.body.errors[0].message, /over maxSessionBytes \(4096\)/);
      assert.equal(refused.issued, undefined);
      assert.equal(refused.setCookie, undefined);
    });

    it('a value JSON cannot store is a SESSION_DATA_INVALID error; the stored session keeps its token and data', async () => {
      const client = new GraphQLClient(running().url);
      await client.operation('mutation { login }');
      const token = client.token;
      const refused = await client.operation('mutation { setBigint }');
      assert.equal(refused.body.errors[0].extensions.code, 'SESSION_DATA_INVALID');
      assert.match(refused.body.errors[0].message, /Cannot store session\.big/);
      assert.equal(refused.issued, undefined);
      assert.equal(client.token, token);
      assert.deepEqual(JSON.parse((await client.operation('{ session }')).body.data.session), { userId: 42 });
    });
  });
}
