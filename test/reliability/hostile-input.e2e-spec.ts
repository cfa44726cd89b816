import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign as rsaSign } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ADAPTERS, TEST_SECRET, type RunningApp } from '../fixtures/fixture-app.js';
import { SessionClient, type SessionResponse } from '../support/session-client.js';
import { testEnv } from '../support/test-env.js';
import { startReliabilityApp } from './reliability-app.js';
import { closeApp, MySqlProbe, sidOf, storeOptions } from './reliability-support.js';

// Hostile input that test/core/token.e2e-spec.ts and bad-input.e2e-spec.ts do not cover. Each case
// ends in a clear 4xx or an empty (fresh) session: never a 500, never another session's data.

const OWNER_DATA = { secret: 'owner-only' };

function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** Signs any header and payload parts (already JSON or not) with an HMAC key. */
function forgeRaw(headerJson: string, payloadJson: string, key: string | Buffer = TEST_SECRET): string {
  const input = `${b64(headerJson)}.${b64(payloadJson)}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

function forge(header: object, payload: object, key: string | Buffer = TEST_SECRET): string {
  return forgeRaw(JSON.stringify(header), JSON.stringify(payload), key);
}

function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { d: value };
  return value;
}

for (const adapter of ADAPTERS) {
  describe(`hostile input (${adapter})`, () => {
    let running: RunningApp;
    let mysql: MySqlProbe;
    const options = storeOptions(testEnv().mysqlUrl, testEnv().redisUrl);
    /** A stored session whose data must never show up anywhere else. */
    let owner: SessionClient;
    let other: SessionClient;

    before(async () => {
      running = await startReliabilityApp(adapter, options);
      mysql = await MySqlProbe.open(testEnv().mysqlUrl, options.tableName);
      owner = new SessionClient(running.url);
      assert.equal((await owner.post('/set', OWNER_DATA)).status, 200);
      other = new SessionClient(running.url);
      assert.equal((await other.post('/set', { secret: 'other-only' })).status, 200);
    });
    after(async () => {
      await closeApp(running);
      await mysql?.close();
    });

    /** Anonymous: 200 with an empty session, nothing of anyone else's. */
    function assertAnonymous(response: SessionResponse): void {
      assert.equal(response.status, 200, JSON.stringify(response.body));
      assert.deepEqual(response.body, { data: {} });
    }

    function assertClearRefusal(response: SessionResponse, status: number, message?: RegExp): void {
      assert.equal(response.status, status, JSON.stringify(response.body));
      if (message) assert.match(response.body.message, message);
      assert.equal(response.issued, undefined, 'no token for a refused request');
      assert.doesNotMatch(JSON.stringify(response.body), /owner-only|other-only/);
    }

    describe('two session cookies', () => {
      it('the first one is used, whole: its data, and none of the other\'s', async () => {
        const first = await new SessionClient(running.url).get('/me', { cookie: `ezsession=${owner.token}; ezsession=${other.token}` });
        assert.deepEqual(first.body, { data: OWNER_DATA });
        const swapped = await new SessionClient(running.url).get('/me', { cookie: `ezsession=${other.token}; ezsession=${owner.token}` });
        assert.deepEqual(swapped.body, { data: { secret: 'other-only' } });
      });

      it('a write goes to the first one only', async () => {
        const a = new SessionClient(running.url);
        await a.post('/set', { who: 'a' });
        const b = new SessionClient(running.url);
        await b.post('/set', { who: 'b' });
        const response = await new SessionClient(running.url).post('/set', { touched: true }, { cookie: `ezsession=${a.token}; ezsession=${b.token}` });
        assert.equal(response.status, 200);
        assert.deepEqual(await mysql.data(sidOf(a.token)), { who: 'a', touched: true });
        assert.deepEqual(await mysql.data(sidOf(b.token)), { who: 'b' });
      });

      it('an invalid first one is not skipped for a valid second one: the request is anonymous', async () => {
        assertAnonymous(await new SessionClient(running.url).get('/me', { cookie: `ezsession=garbage; ezsession=${owner.token}` }));
      });
    });

    describe('Authorization header next to a valid cookie', () => {
      for (const [what, bearer] of [
        ['not a JWT', () => 'not.a.token'],
        ['a JWT of another type (a gateway\'s)', () => forge({ alg: 'HS256', typ: 'JWT' }, payloadOf(other.token!))],
        ['a JWT signed with another secret', () => forge({ alg: 'HS256', typ: 'ezsession+jwt' }, payloadOf(other.token!), 'gateway-secret-0f1e2d3c4b5a69788796a5b4c3d2e1f0')]
      ] as const) {
        it(`a Bearer token that is not this app's (${what}) is ignored: the cookie's session is used`, async () => {
          const response = await new SessionClient(running.url).get('/me', { cookie: `ezsession=${owner.token}`, authorization: `Bearer ${bearer()}` });
          assert.equal(response.status, 200);
          assert.deepEqual(response.body, { data: OWNER_DATA });
        });
      }

      it('a Bearer token of this app that is no longer valid wins over the cookie: anonymous, and a write starts a fresh session leaving the cookie\'s alone', async () => {
        const expired = forge({ alg: 'HS256', typ: 'ezsession+jwt' }, { ...payloadOf(other.token!), iat: 1000, exp: 2000 });
        const headers = { cookie: `ezsession=${owner.token}`, authorization: `Bearer ${expired}` };
        assertAnonymous(await new SessionClient(running.url).get('/me', headers));
        const write = await new SessionClient(running.url).post('/set', { intruder: true }, headers);
        assert.equal(write.status, 200);
        assert.notEqual(sidOf(write.issued), sidOf(owner.token));
        assert.deepEqual(await mysql.data(sidOf(owner.token)), OWNER_DATA);
      });

      for (const authorization of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', 'Bearer     ', 'Digest username="x"']) {
        it(`"${authorization}" is not a token: the cookie's session is used`, async () => {
          const response = await new SessionClient(running.url).get('/me', { cookie: `ezsession=${owner.token}`, authorization });
          assert.equal(response.status, 200);
          assert.deepEqual(response.body, { data: OWNER_DATA });
        });
      }

      for (const authorization of ['Bearer', 'Bearer a b', 'Bearer ....', `Bearer ${'A'.repeat(8000)}`]) {
        it(`"${authorization.slice(0, 20)}" alone is anonymous, not an error`, async () => {
          assertAnonymous(await new SessionClient(running.url).get('/me', { authorization }));
        });
      }
    });

    describe('tokens signed with the secret but malformed', () => {
      const header = { alg: 'HS256', typ: 'ezsession+jwt' };
      const cases: Array<[string, () => string]> = [
        ['an unknown kid', () => forge({ ...header, kid: 'other' }, payloadOf(owner.token!))],
        ['an empty kid', () => forge({ ...header, kid: '' }, payloadOf(owner.token!))],
        ['a path as kid', () => forge({ ...header, kid: '../../../../dev/null' }, payloadOf(owner.token!))],
        ['SQL as kid', () => forge({ ...header, kid: "' OR 1=1 --" }, payloadOf(owner.token!))],
        ['a numeric kid', () => forge({ ...header, kid: 0 }, payloadOf(owner.token!))],
        ['"__proto__" as kid', () => forge({ ...header, kid: '__proto__' }, payloadOf(owner.token!))],
        ['"constructor" as kid', () => forge({ ...header, kid: 'constructor' }, payloadOf(owner.token!))],
        ['a 3000-character kid', () => forge({ ...header, kid: 'k'.repeat(3000) }, payloadOf(owner.token!))],
        ['a payload that is not JSON', () => forgeRaw(JSON.stringify(header), `{"sid":"${sidOf(owner.token)}",`)],
        ['a payload that is a JSON string', () => forgeRaw(JSON.stringify(header), JSON.stringify(JSON.stringify(payloadOf(owner.token!))))],
        ['a payload that is null', () => forgeRaw(JSON.stringify(header), 'null')],
        ['a header that is not JSON', () => forgeRaw('{"alg":"HS256"', JSON.stringify(payloadOf(owner.token!)))],
        ['an iat in the year 3000', () => forge(header, { ...payloadOf(owner.token!), iat: 32503680000 })],
        ['an iat of 1e308', () => forge(header, { ...payloadOf(owner.token!), iat: 1e308 })],
        ['an iat as a string', () => forge(header, { ...payloadOf(owner.token!), iat: String(payloadOf(owner.token!).iat) })],
        ['a negative exp', () => forge(header, { ...payloadOf(owner.token!), exp: -1 })]
      ];
      for (const [what, make] of cases) {
        it(`${what}: anonymous, never the owner's data`, async () => {
          assertAnonymous(await new SessionClient(running.url, 'bearer', make()).get('/me'));
        });
      }
    });

    describe('algorithm confusion', () => {
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;

      it('HS256 keyed with an RSA public key PEM: anonymous', async () => {
        const token = forge({ alg: 'HS256', typ: 'ezsession+jwt' }, payloadOf(owner.token!), publicPem);
        assertAnonymous(await new SessionClient(running.url, 'bearer', token).get('/me'));
      });

      it('RS256 signed with an RSA private key: anonymous', async () => {
        const input = `${b64({ alg: 'RS256', typ: 'ezsession+jwt' })}.${b64(payloadOf(owner.token!))}`;
        const token = `${input}.${rsaSign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
        assertAnonymous(await new SessionClient(running.url, 'bearer', token).get('/me'));
      });
    });

    describe('prototype keys', () => {
      it('a nested "constructor" key in session data is refused with 422 naming it, and nothing is stored', async () => {
        const client = new SessionClient(running.url);
        await client.post('/set', { kept: true });
        assertClearRefusal(await client.post('/r/store-constructor'), 422, /session\.payload\.constructor.*refused/);
        assert.deepEqual(await mysql.data(sidOf(client.token)), { kept: true });
      });

      it('a top-level "constructor" key in session data is refused with 422, and nothing is stored', async () => {
        const client = new SessionClient(running.url);
        await client.post('/set', { kept: true });
        assertClearRefusal(await client.post('/r/store-constructor-key'), 422, /constructor/);
        assert.deepEqual(await mysql.data(sidOf(client.token)), { kept: true });
      });

      it('copying a JSON body with a "__proto__" key into the session: a 4xx, and the handler never sees isAdmin', async () => {
        await new SessionClient(running.url).post('/r/forget-copy');
        const client = new SessionClient(running.url);
        await client.post('/set', { kept: true });
        const response = await client.post('/r/copy', JSON.parse('{"name": "x", "__proto__": {"isAdmin": true}}'));
        assert.ok(response.status >= 400 && response.status < 500, `status ${response.status}: ${JSON.stringify(response.body)}`);
        assert.deepEqual((await client.get('/r/last-copy')).body, { isAdmin: null }, 'what the handler saw');
        assert.deepEqual(await mysql.data(sidOf(client.token)), { kept: true });
        assert.deepEqual((await client.get('/r/pollution')).body, { isAdmin: null, prototypeKeys: [] });
      });

      it('copying a JSON body with a "__proto__" key into @Jwt(): a 4xx, and the handler never sees isAdmin', async () => {
        await new SessionClient(running.url).post('/r/forget-copy');
        const response = await new SessionClient(running.url).post('/r/copy-claims', JSON.parse('{"name": "x", "__proto__": {"isAdmin": true}}'));
        assert.ok(response.status >= 400 && response.status < 500, `status ${response.status}: ${JSON.stringify(response.body)}`);
        assert.equal(response.issued, undefined);
        assert.deepEqual((await new SessionClient(running.url).get('/r/last-copy')).body, { isAdmin: null }, 'what the handler saw');
      });

      it('a genuine token carrying a "__proto__" claim grants no claim it does not list', async () => {
        const payload = JSON.stringify(payloadOf(owner.token!)).replace(/^\{/, '{"__proto__":{"isAdmin":true},');
        const token = forgeRaw(JSON.stringify({ alg: 'HS256', typ: 'ezsession+jwt' }), payload);
        const response = await new SessionClient(running.url, 'bearer', token).get('/r/claim-probe');
        assert.equal(response.status, 200);
        assert.equal(response.body.isAdmin, null);
      });
    });

    describe('awkward values', () => {
      it('a lone surrogate in a session key and value comes back exactly', async () => {
        const client = new SessionClient(running.url);
        const data = { 'key\ud800': 'value\udc00', plain: 'x\ud83d' };
        assert.equal((await client.post('/set', data)).status, 200);
        assert.deepEqual((await client.get('/me')).body, { data });
        assert.deepEqual(await mysql.data(sidOf(client.token)), data);
      });

      it('a lone surrogate in a @Jwt() claim comes back exactly', async () => {
        const client = new SessionClient(running.url);
        assert.equal((await client.post('/claims', { note: 'a\ud800b' })).status, 200);
        assert.deepEqual((await client.get('/claims')).body, { claims: { note: 'a\ud800b' } });
      });

      it('session data nested 200 levels deep is refused with 422 naming the depth limit, and nothing is stored', async () => {
        const client = new SessionClient(running.url);
        await client.post('/set', { kept: true });
        assertClearRefusal(await client.post('/set', { deep: nested(200) }), 422, /nested deeper than \d+ levels/);
        assert.deepEqual(await mysql.data(sidOf(client.token)), { kept: true });
      });

      it('a @Jwt() claim nested 200 levels deep is refused with 422 naming the depth limit', async () => {
        assertClearRefusal(await new SessionClient(running.url).post('/claims', { deep: nested(200) }), 422, /nested deeper than \d+ levels/);
      });
    });

    describe('reserved claim names through @Jwt()', () => {
      for (const name of ['stored', 'iat', 'exp', 'nbf', 'iss', 'aud', 'sub', 'jti', 'typ', 'kid', 'fp', 'sct']) {
        it(`"${name}" is refused with 422 naming it, and no token is issued`, async () => {
          const client = new SessionClient(running.url);
          assertClearRefusal(await client.post('/claims', { [name]: 9999999999 }), 422, new RegExp(`"${name}" is reserved`));
        });
      }

      it('a refused reserved claim leaves the existing token\'s claims as they were', async () => {
        const client = new SessionClient(running.url);
        await client.post('/claims', { role: 'user' });
        const before = client.token;
        assert.equal((await client.post('/claims', { role: 'admin', exp: 9999999999 })).status, 422);
        assert.equal(client.token, before);
        assert.deepEqual((await client.get('/claims')).body, { claims: { role: 'user' } });
      });
    });
  });
}
