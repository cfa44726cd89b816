import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ADAPTERS, startFixtureApp, TEST_SECRET, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** Signs any header and payload with the test secret, to build tokens the server must still refuse. */
function forge(header: object, payload: object, secret = TEST_SECRET): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

for (const adapter of ADAPTERS) {
  describe(`session token (${adapter})`, () => {
    let running: RunningApp;
    before(async () => (running = await startFixtureApp(adapter, realStoreOptions())));
    after(async () => running?.close());

    it('is an HS256 JWT with a UUID v4 sid, the stored flag, iat, exp and the custom claims', async () => {
      const client = new SessionClient(running.url);
      const { issued } = await client.post('/login');
      const [header] = issued!.split('.');
      assert.deepEqual(JSON.parse(Buffer.from(header, 'base64url').toString()), { alg: 'HS256', typ: 'ezsession+jwt' });
      const claims = claimsOf(issued);
      assert.match(claims.sid, UUID_V4);
      assert.equal(claims.stored, true);
      assert.equal(claims.role, 'admin');
      assert.equal(claims.exp - claims.iat, 7200);
    });

    it('goes out as an HttpOnly SameSite=Lax cookie whose Max-Age matches exp, and in the x-session-token header', async () => {
      const client = new SessionClient(running.url);
      const response = await client.post('/login');
      const claims = claimsOf(response.issued);
      assert.equal(response.setCookie, `ezsession=${response.issued}; Max-Age=${claims.exp - claims.iat}; Path=/; HttpOnly; SameSite=Lax`);
      assert.equal(response.headers.get('cache-control'), 'no-store');
    });

    it('is not issued to a first visit whose handler does not use the session', async () => {
      const response = await new SessionClient(running.url).get('/plain');
      assert.equal(response.setCookie, undefined);
      assert.equal(response.issued, undefined);
    });

    it('is not issued to a first visit whose handler reads the session but stores nothing', async () => {
      const response = await new SessionClient(running.url).get('/me');
      assert.deepEqual(response.body, { data: {} });
      assert.equal(response.setCookie, undefined);
    });

    it('works from the Authorization header for clients that do not keep cookies', async () => {
      const client = new SessionClient(running.url, 'bearer');
      await client.post('/login');
      assert.deepEqual((await client.get('/me')).body, { data: { userId: 42 } });
    });

    it('is read from the Authorization header before the cookie', async () => {
      const cookieClient = new SessionClient(running.url);
      await cookieClient.post('/set', { owner: 'cookie' });
      const bearerClient = new SessionClient(running.url, 'bearer');
      await bearerClient.post('/set', { owner: 'bearer' });
      const response = await new SessionClient(running.url).get('/me', {
        cookie: `ezsession=${cookieClient.token}`,
        authorization: `Bearer ${bearerClient.token}`
      });
      assert.deepEqual(response.body, { data: { owner: 'bearer' } });
    });

    it('accepts the bearer scheme in any letter case', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { k: 1 });
      const response = await new SessionClient(running.url).get('/me', { authorization: `bEaReR ${client.token}` });
      assert.deepEqual(response.body, { data: { k: 1 } });
    });

    describe('a token the server did not issue unchanged is treated as no token', () => {
      let genuine: string;
      before(async () => {
        const client = new SessionClient(running.url);
        await client.post('/set', { secret: 'owner-only' });
        genuine = client.token!;
      });

      const cases: Array<[string, () => string]> = [
        ['a payload edited after signing', () => {
          const [h, p, s] = genuine.split('.');
          return `${h}.${b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), role: 'root' })}.${s}`;
        }],
        ['a signature from another secret', () => forge({ alg: 'HS256', typ: 'ezsession+jwt' }, claimsOf(genuine), 'another-secret-9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a')],
        ['alg none', () => `${b64({ alg: 'none', typ: 'ezsession+jwt' })}.${genuine.split('.')[1]}.`],
        ['alg nOnE with a signature', () => forge({ alg: 'nOnE' }, claimsOf(genuine))],
        ['alg HS512', () => forge({ alg: 'HS512', typ: 'ezsession+jwt' }, claimsOf(genuine))],
        ['an expired token', () => forge({ alg: 'HS256', typ: 'ezsession+jwt' }, { ...claimsOf(genuine), iat: 1000, exp: 2000 })],
        ['a token without exp', () => {
          const { exp: _exp, ...claims } = claimsOf(genuine);
          return forge({ alg: 'HS256', typ: 'ezsession+jwt' }, claims);
        }],
        ['an iat an hour in the future', () => forge({ alg: 'HS256', typ: 'ezsession+jwt' }, { ...claimsOf(genuine), iat: Math.floor(Date.now() / 1000) + 3600 })],
        ['a sid that is not a UUID v4', () => forge({ alg: 'HS256', typ: 'ezsession+jwt' }, { ...claimsOf(genuine), sid: '../../etc/passwd' })],
        ['a stored flag that is not a boolean', () => forge({ alg: 'HS256', typ: 'ezsession+jwt' }, { ...claimsOf(genuine), stored: 'true' })],
        ['an array payload', () => forge({ alg: 'HS256', typ: 'ezsession+jwt' }, [claimsOf(genuine)])],
        ['garbage', () => 'not-a-jwt'],
        ['a truncated token', () => genuine.slice(0, -5)],
        ['an oversized token', () => genuine + 'A'.repeat(5000)]
      ];

      for (const [name, make] of cases) {
        it(`${name}: 200 with an empty session, never the stored data`, async () => {
          const response = await new SessionClient(running.url, 'bearer', make()).get('/me');
          assert.equal(response.status, 200);
          assert.deepEqual(response.body, { data: {} });
        });
      }

      it('a forged token gets a fresh session id when the handler writes', async () => {
        const forged = forge({ alg: 'HS256', typ: 'ezsession+jwt' }, { ...claimsOf(genuine), iat: 1000, exp: 2000 });
        const client = new SessionClient(running.url, 'bearer', forged);
        await client.post('/set', { mine: true });
        assert.notEqual(claimsOf(client.token).sid, claimsOf(genuine).sid);
        const owner = await new SessionClient(running.url, 'bearer', genuine).get('/me');
        assert.deepEqual(owner.body, { data: { secret: 'owner-only' } });
      });
    });

    it('refuses to set a reserved claim through @Jwt() with a 422 naming it', async () => {
      const response = await new SessionClient(running.url).post('/claims', { sid: 'mine' });
      assert.equal(response.status, 422);
      assert.match(response.body.message, /"sid" is reserved/);
      assert.equal(response.issued, undefined);
    });

    it('refuses a claim JSON cannot carry with a 422 naming it, and issues no token', async () => {
      const response = await new SessionClient(running.url).post('/claim-bigint');
      assert.equal(response.status, 422);
      assert.match(response.body.message, /Cannot store jwt\.big: BigInt/);
      assert.equal(response.issued, undefined);
    });

    it('refuses claims that would push the cookie past 4096 bytes before writing anything', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { kept: 1 });
      const response = await client.post('/set-with-claims', { data: { written: true }, claims: { blob: 'x'.repeat(5000) } });
      assert.equal(response.status, 422);
      assert.match(response.body.message, /over the 4096 a browser keeps/);
      assert.equal(response.issued, undefined);
      assert.deepEqual((await client.get('/me')).body, { data: { kept: 1 } });
    });

    it('keeps claims set in the same request as the first data write', async () => {
      const client = new SessionClient(running.url);
      await client.post('/login');
      assert.deepEqual((await client.get('/claims')).body, { claims: { role: 'admin' } });
      assert.deepEqual((await client.get('/me')).body, { data: { userId: 42 } });
    });

    it('round-trips nested claims with their shape', async () => {
      const client = new SessionClient(running.url);
      await client.post('/claims', { prefs: { tags: ['a', 'b'], dark: true } });
      assert.deepEqual((await client.get('/claims')).body, { claims: { prefs: { tags: ['a', 'b'], dark: true } } });
    });
  });
}

for (const adapter of ADAPTERS) {
  describe(`hardened cookie (${adapter})`, () => {
    let running: RunningApp;
    before(async () => (running = await startFixtureApp(adapter, realStoreOptions({ cookie: { name: '__Host-session', secure: true, sameSite: 'strict' } }))));
    after(async () => running?.close());

    it('uses the __Host- prefix with Secure, Path=/ and no Domain, and reads the token back from it', async () => {
      const response = await new SessionClient(running.url).post('/set', { a: 1 });
      const claims = claimsOf(response.issued);
      assert.equal(response.setCookie, `__Host-session=${response.issued}; Max-Age=${claims.exp - claims.iat}; Path=/; HttpOnly; Secure; SameSite=Strict`);
      const read = await new SessionClient(running.url).get('/me', { cookie: `__Host-session=${response.issued}` });
      assert.deepEqual(read.body, { data: { a: 1 } });
    });
  });
}
