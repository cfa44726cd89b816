import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createConnection, type Connection } from 'mysql2/promise';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { FILE_CHUNKS, ResponseStylesController } from '../fixtures/response-styles.controller.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient, type SessionResponse } from '../support/session-client.js';
import { readOnlyDatabaseUrl } from '../support/read-only-database.js';
import { testEnv } from '../support/test-env.js';

/** Each way a handler can answer, with what the client must see of the app's own answer. */
const STYLES: Array<[style: string, path: string, check: (response: SessionResponse) => void]> = [
  ['@Res() with a redirect', '/styles/redirect', (r) => (assert.equal(r.status, 303), assert.equal(r.headers.get('location'), '/'))],
  ['@Res() with send()', '/styles/send', (r) => (assert.equal(r.status, 200), assert.deepEqual(r.body, { sent: true }))],
  ['@Res() with json()', '/styles/json', (r) => (assert.equal(r.status, 200), assert.deepEqual(r.body, { json: true }))],
  [
    '@Res({ passthrough: true })',
    '/styles/passthrough',
    (r) => (assert.equal(r.status, 200), assert.deepEqual(r.body, { passthrough: true }), assert.equal(r.headers.get('x-app'), 'kept'))
  ],
  ['a StreamableFile', '/styles/file', (r) => (assert.equal(r.status, 200), assert.equal(r.body, Buffer.concat(FILE_CHUNKS).toString()))]
];

for (const adapter of ADAPTERS) {
  describe(`every way of answering stores the session and sends its token (${adapter})`, () => {
    let running: RunningApp;
    /** The same sessions, through a database user that may read them but not write them: every commit fails. */
    let readOnly: RunningApp;
    let mysql: Connection;
    const options = realStoreOptions({ maxSessionBytes: 4096, lockTimeout: 0.5 });

    before(async () => {
      running = await startFixtureApp(adapter, options, { controllers: [ResponseStylesController] });
      mysql = await createConnection(testEnv().mysqlUrl);
      readOnly = await startFixtureApp(adapter, { ...options, database: { type: 'mysql', url: await readOnlyDatabaseUrl() }, createTable: false }, { controllers: [ResponseStylesController] });
    });
    after(async () => {
      await running?.close();
      await readOnly?.close();
      await mysql?.end();
      assert.ok(!running.logs.some((line) => line.includes('ERR_HTTP_HEADERS_SENT')), running.logs.join('\n'));
    });

    for (const [style, path, check] of STYLES) {
      it(`${style}: the answer is the app's, with the token of the stored data`, async () => {
        const client = new SessionClient(running.url);
        const response = await client.post(path, { style });
        check(response);
        assert.equal(claimsOf(response.issued).stored, true);
        assert.match(String(response.setCookie), new RegExp(`^ezsession=${response.issued}; Max-Age=\\d+`));
        assert.equal(response.headers.get('cache-control'), 'no-store');
        assert.deepEqual((await client.get('/me')).body, { data: { style } });
      });

      it(`${style}: data over maxSessionBytes answers 413 in its place, with no token, and keeps the stored data`, async () => {
        const client = new SessionClient(running.url);
        await client.post('/set', { kept: true });
        const response = await client.post(path, { blob: 'x'.repeat(5000) });
        assert.equal(response.status, 413);
        assert.equal(response.body.error, 'SessionDataError');
        assert.equal(response.issued, undefined);
        assert.equal(response.setCookie, undefined);
        assert.equal(response.headers.get('location'), null);
        assert.deepEqual((await client.get('/me')).body, { data: { kept: true } });
      });

      it(`${style}: a commit the database refuses answers 503 in its place, with no token, and keeps the stored data`, async () => {
        const client = new SessionClient(running.url);
        await client.post('/set', { kept: true });
        const response = await new SessionClient(readOnly.url, 'cookie', client.token).post(path, { style });
        assert.equal(response.status, 503);
        assert.equal(response.body.error, 'SessionStoreUnavailable');
        assert.equal(response.issued, undefined);
        assert.equal(response.setCookie, undefined);
        assert.equal(response.headers.get('location'), null);
        assert.deepEqual((await client.get('/me')).body, { data: { kept: true } });
      });
    }

    it("an exception filter's error answer stores nothing the handler changed, and sends no token", async () => {
      const client = new SessionClient(running.url);
      const response = await client.post('/styles/filtered-error', { lost: true });
      assert.equal(response.status, 418);
      assert.deepEqual(response.body, { teapot: true });
      assert.equal(response.issued, undefined);
      assert.equal(response.setCookie, undefined);
    });

    it("an exception filter's redirect is an answer like any other: the flash set before the exception reaches the next page", async () => {
      const client = new SessionClient(running.url);
      const response = await client.post('/styles/filtered-redirect');
      assert.equal(response.status, 303);
      assert.equal(response.headers.get('location'), '/login');
      assert.equal(claimsOf(response.issued).stored, true);
      assert.deepEqual((await client.get('/flash/notice')).body, { value: 'Sign in first' });
    });

    it('a redirect after regenerate(req) carries the new token', async () => {
      const client = new SessionClient(running.url);
      await client.post('/login');
      const before = claimsOf(client.token).sid;
      const response = await client.post('/styles/login-redirect');
      assert.equal(response.status, 303);
      assert.notEqual(claimsOf(response.issued).sid, before);
      assert.deepEqual((await client.get('/me')).body, { data: { userId: 42 } });
    });

    it('a redirect after destroy(req) clears the cookie', async () => {
      const client = new SessionClient(running.url);
      await client.post('/login');
      const response = await client.post('/styles/logout-redirect');
      assert.equal(response.status, 303);
      assert.match(String(response.setCookie), /^ezsession=; Max-Age=0;/);
      assert.equal(response.issued, undefined);
    });

    it('a locked handler that never answers gives its lock back when the client leaves, and writes nothing', async () => {
      const client = new SessionClient(running.url);
      await client.post('/inc');
      const leaving = new AbortController();
      const abandoned = fetch(`${running.url}/styles/never-answers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${client.token}` },
        signal: leaving.signal
      }).catch(() => 'left');
      await sleep(150);
      leaving.abort();
      assert.equal(await abandoned, 'left');
      await sleep(50);
      const next = await client.post('/inc');
      assert.equal(next.status, 200);
      assert.deepEqual(next.body, { n: 2 });
    });
  });
}
