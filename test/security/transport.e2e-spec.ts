import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { EzSessionService, type EzSessionModuleOptions } from '../../lib/index.js';
import { CsrfController, OpenController } from '../fixtures/csrf.controller.js';
import { ADAPTERS, startFixtureApp, TEST_SECRET, type AdapterName, type AppParts, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { StorageCounters } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';

// Issue 18 items 1, 6, 7 and 9 from a Node client that sets the headers a browser would send
// (test/security/cross-origin.browser.e2e-spec.ts has the same in Chromium).

const CROSS_SITE = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', origin: 'https://attacker.test' };
const SAME_SITE = { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'no-cors', origin: 'http://evil.example.test' };

/** Boots the fixture app (with the CSRF routes) for the suite it is called in. */
function serve(adapter: AdapterName, overrides: Partial<EzSessionModuleOptions> = {}, parts: AppParts = {}) {
  let running: RunningApp;
  before(async () => (running = await startFixtureApp(adapter, realStoreOptions(overrides), { controllers: [CsrfController, OpenController], ...parts })));
  after(async () => running?.close());
  return {
    running: () => running,
    read: (token: string | undefined) => running.app.get(EzSessionService).read(claimsOf(token).sid)
  };
}

async function loggedIn(url: string, transport: 'cookie' | 'bearer' = 'cookie'): Promise<SessionClient> {
  const client = new SessionClient(url, transport);
  assert.equal((await client.post('/set', { owner: 'victim' })).status, 200);
  return client;
}

function forge(header: object, payload: object, secret = TEST_SECRET): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

for (const adapter of ADAPTERS) {
  describe(`token header exposure (${adapter})`, () => {
    const app = serve(adapter);

    it('a browser request carrying the cookie gets the new token in Set-Cookie only, never in the header', async () => {
      const client = await loggedIn(app.running().url);
      for (const headers of [{ 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' }, { 'sec-fetch-site': 'none' }, { origin: app.running().url }] as Array<Record<string, string>>) {
        const response = await client.fork().post('/claims', { role: 'x' }, headers);
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('x-session-token'), null, JSON.stringify(headers));
        assert.match(response.setCookie ?? '', /^ezsession=[^;]+/);
        assert.equal(claimsOf(response.setCookie!.split(';')[0].slice('ezsession='.length)).role, 'x');
        assert.equal(response.headers.get('cache-control'), 'no-store');
      }
    });

    it('a browser request with no token at all (a login) gets no header either', async () => {
      const response = await new SessionClient(app.running().url).post('/login', undefined, { 'sec-fetch-site': 'same-origin' });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-session-token'), null);
      assert.match(response.setCookie ?? '', /^ezsession=/);
    });

    it('a Bearer client gets the header, whatever browser headers come with it', async () => {
      const client = await loggedIn(app.running().url, 'bearer');
      const response = await client.post('/claims', { role: 'y' }, { 'sec-fetch-site': 'same-origin', origin: app.running().url });
      assert.equal(claimsOf(response.issued).role, 'y');
    });

    it("a non-browser client (Node's fetch sends Sec-Fetch-Mode, no Sec-Fetch-Site) gets the header", async () => {
      const client = new SessionClient(app.running().url);
      const response = await client.post('/login', undefined, { 'sec-fetch-mode': 'cors' });
      assert.equal(claimsOf(response.issued).role, 'admin');
    });
  });

  for (const mode of ['always', 'never'] as const) {
    describe(`tokenHeader: '${mode}' (${adapter})`, () => {
      const app = serve(adapter, { tokenHeader: mode });
      it(`${mode === 'always' ? 'sends' : 'withholds'} the header for browsers and other clients alike; the cookie goes either way`, async () => {
        for (const headers of [{}, { 'sec-fetch-site': 'same-origin' }] as Array<Record<string, string>>) {
          const response = await new SessionClient(app.running().url).post('/login', undefined, headers);
          assert.equal(response.headers.get('x-session-token') !== null, mode === 'always', JSON.stringify(headers));
          assert.match(response.setCookie ?? '', /^ezsession=/);
        }
      });
    });
  }

  describe(`cross-origin requests with the cookie (${adapter})`, () => {
    const app = serve(adapter);
    let counters: StorageCounters;
    before(async () => (counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl)));
    after(async () => counters?.close());

    for (const [what, headers] of [
      ['a cross-site form (Sec-Fetch-Site: cross-site)', CROSS_SITE],
      ['a sibling subdomain (Sec-Fetch-Site: same-site)', SAME_SITE],
      ['an Origin of another host, without Sec-Fetch-Site', { origin: 'http://evil.example.test' }],
      ['an Origin of the same host on another port', { origin: 'http://127.0.0.1:1' }],
      ['an opaque Origin (null), without Sec-Fetch-Site', { origin: 'null' }],
      ['a Sec-Fetch-Site list', { 'sec-fetch-site': 'same-origin, cross-site' }]
    ] as const) {
      it(`${what}: refused with 403 SESSION_CSRF_REFUSED, the session untouched, no cookie`, async () => {
        const victim = await loggedIn(app.running().url);
        const response = await victim.fork().post('/set', { owner: 'attacker' }, headers as Record<string, string>);
        assert.equal(response.status, 403);
        assert.equal(response.body.error, 'SessionCsrfRefused');
        assert.equal(response.setCookie, undefined);
        assert.equal(response.issued, undefined);
        assert.deepEqual(await app.read(victim.token), { owner: 'victim' });
      });
    }

    it('every unsafe method is checked; GET is not', async () => {
      const victim = await loggedIn(app.running().url);
      for (const method of ['PUT', 'PATCH', 'DELETE', 'POST']) {
        const response = await victim.fork().request(method, '/csrf/any', { owner: 'attacker' }, CROSS_SITE);
        assert.equal(response.status, 403, method);
      }
      assert.deepEqual(await app.read(victim.token), { owner: 'victim' });
      assert.deepEqual((await victim.fork().get('/csrf/any', CROSS_SITE)).body, { data: { owner: 'victim' } });
    });

    it('the app\'s own requests pass: Sec-Fetch-Site same-origin or none, or its own Origin', async () => {
      const victim = await loggedIn(app.running().url);
      for (const headers of [{ 'sec-fetch-site': 'same-origin', origin: app.running().url }, { 'sec-fetch-site': 'none' }, { origin: app.running().url }, {}] as Array<Record<string, string>>) {
        const response = await victim.post('/set', { seen: JSON.stringify(headers) }, headers);
        assert.equal(response.status, 200, JSON.stringify(headers));
      }
      assert.equal((await app.read(victim.token))?.seen, '{}');
    });

    it('a Bearer token of this app passes from anywhere (another origin cannot set Authorization without CORS consent)', async () => {
      const client = await loggedIn(app.running().url, 'bearer');
      assert.equal((await client.post('/set', { via: 'bearer' }, CROSS_SITE)).status, 200);
      assert.equal((await app.read(client.token))?.via, 'bearer');
    });

    it('a Bearer token that is not ours does not make the cookie pass', async () => {
      const victim = await loggedIn(app.running().url);
      const response = await victim.fork().post('/set', { owner: 'attacker' }, { ...CROSS_SITE, authorization: 'Bearer gateway-token' });
      assert.equal(response.status, 403);
      assert.deepEqual(await app.read(victim.token), { owner: 'victim' });
    });

    it('login CSRF: a cross-origin request without any token cannot start a cookie session', async () => {
      const response = await new SessionClient(app.running().url).post('/login', undefined, CROSS_SITE);
      assert.equal(response.status, 403);
      assert.equal(response.setCookie, undefined);
    });

    it('a route that never asks for its session meets no EzSession code, cross-origin or not', async () => {
      const victim = await loggedIn(app.running().url);
      const response = await victim.fork().post('/csrf/nothing', undefined, CROSS_SITE);
      assert.equal(response.status, 200);
    });

    it('@SkipCsrf() on a handler or a controller lets other origins in', async () => {
      const victim = await loggedIn(app.running().url);
      assert.equal((await victim.post('/csrf/webhook', { hook: 'ok' }, CROSS_SITE)).status, 200);
      assert.equal((await victim.post('/open/set', { open: 'ok' }, CROSS_SITE)).status, 200);
      assert.deepEqual(await app.read(victim.token), { owner: 'victim', hook: 'ok', open: 'ok' });
    });

    it('@SkipCsrf() is read through the ExecutionContext: a session reached first through the bare request is still checked', async () => {
      const victim = await loggedIn(app.running().url);
      assert.equal((await victim.fork().post('/csrf/webhook-plain-logout', undefined, CROSS_SITE)).status, 403);
      assert.deepEqual(await app.read(victim.token), { owner: 'victim' });
      assert.equal((await victim.fork().post('/csrf/webhook-service', undefined, CROSS_SITE)).status, 200);
      assert.equal(await app.read(victim.token), undefined, 'destroyed, with the exemption seen through @Session()');
    });

    it('the check costs no storage I/O: a refused request reads and writes nothing', async () => {
      const victim = await loggedIn(app.running().url);
      const attacker = victim.fork();
      const usage = await counters.measure(() => attacker.post('/set', { owner: 'attacker' }, CROSS_SITE));
      assert.equal(usage.result.status, 403);
      assert.deepEqual({ redis: usage.redis.sent, mysql: usage.mysql.queries }, { redis: {}, mysql: 0 });
    });

    it('a passing request costs what it did before the check: a cached read and one write', async () => {
      const victim = await loggedIn(app.running().url);
      await victim.get('/me');
      const usage = await counters.measure(() => victim.get('/me', { 'sec-fetch-site': 'same-origin' }));
      assert.deepEqual(usage.result.body, { data: { owner: 'victim' } });
      assert.equal(usage.mysql.queries, 0);
    });
  });

  describe(`csrf options (${adapter})`, () => {
    describe('trustedOrigins', () => {
      const app = serve(adapter, { csrf: { trustedOrigins: ['https://front.example.test'] } });
      it('an Origin in the list passes, even cross-site; any other is refused', async () => {
        const victim = await loggedIn(app.running().url);
        assert.equal((await victim.post('/set', { from: 'front' }, { 'sec-fetch-site': 'cross-site', origin: 'https://front.example.test' })).status, 200);
        assert.equal((await victim.fork().post('/set', { from: 'other' }, { 'sec-fetch-site': 'cross-site', origin: 'https://front.example.test.attacker.test' })).status, 403);
        assert.equal((await victim.fork().post('/set', { from: 'other' }, { 'sec-fetch-site': 'same-site', origin: 'http://front.example.test' })).status, 403, 'another scheme is another origin');
        assert.equal((await app.read(victim.token))?.from, 'front');
      });
    });

    describe('csrf: false', () => {
      const app = serve(adapter, { csrf: false });
      it('turns the check off', async () => {
        const victim = await loggedIn(app.running().url);
        assert.equal((await victim.post('/set', { owner: 'anyone' }, CROSS_SITE)).status, 200);
      });
    });

    describe('behind a proxy', () => {
      // The proxy took the browser's https://<host>/ and forwards it as plain HTTP.
      const behindTls = (url: string) => ({ origin: url.replace('http:', 'https:'), 'x-forwarded-proto': 'https' });
      const renamed = { origin: 'https://app.example.test', 'x-forwarded-host': 'app.example.test', 'x-forwarded-proto': 'https' };
      describe('trusted', () => {
        const app = serve(adapter, {}, { trustProxy: true });
        it('compares Origin with the origin the framework resolves (X-Forwarded-Proto and -Host honoured)', async () => {
          const victim = await loggedIn(app.running().url);
          assert.equal((await victim.post('/set', { via: 'proxy' }, behindTls(app.running().url))).status, 200);
          assert.equal((await victim.post('/set', { via: 'renamed' }, renamed)).status, 200);
          assert.equal((await victim.post('/set', { via: 'attacker' }, { ...renamed, origin: 'https://attacker.test' })).status, 403);
        });
      });
      describe('not trusted', () => {
        const app = serve(adapter);
        it('X-Forwarded-* are not believed: an https Origin does not match a request that arrived over http', async () => {
          const victim = await loggedIn(app.running().url);
          assert.equal((await victim.post('/set', { via: 'proxy' }, behindTls(app.running().url))).status, 403);
          assert.equal((await victim.post('/set', { via: 'renamed' }, renamed)).status, 403);
        });
      });
    });
  });

  describe(`issuer and audience (${adapter})`, () => {
    const parties = { issuer: 'https://a.example.test', audience: 'app-a' };
    const app = serve(adapter, parties);

    it('puts iss and aud into every token', async () => {
      const client = await loggedIn(app.running().url);
      assert.equal(claimsOf(client.token).iss, parties.issuer);
      assert.equal(claimsOf(client.token).aud, parties.audience);
    });

    it("refuses a token another app minted with the same secret (another or no issuer or audience): {admin: true} grants nothing", async () => {
      const own = claimsOf((await loggedIn(app.running().url)).token);
      const header = { alg: 'HS256', typ: 'ezsession+jwt' };
      for (const [what, payload] of [
        ['another issuer', { ...own, iss: 'https://b.example.test', admin: true }],
        ['another audience', { ...own, aud: 'app-b', admin: true }],
        ['no issuer', { ...own, iss: undefined, admin: true }],
        ['no audience', { ...own, aud: undefined, admin: true }]
      ] as const) {
        for (const transport of ['bearer', 'cookie'] as const) {
          const response = await new SessionClient(app.running().url, transport, forge(header, payload)).get('/claims');
          assert.deepEqual(response.body, { claims: {} }, `${what} (${transport})`);
        }
      }
      assert.deepEqual((await new SessionClient(app.running().url, 'bearer', forge(header, { ...own, admin: true })).get('/claims')).body, { claims: { admin: true } }, 'the forger reproduces a genuine token');
    });

    it('refuses a crit header and a 0.1.0 token (typ JWT)', async () => {
      const own = claimsOf((await loggedIn(app.running().url)).token);
      for (const header of [{ alg: 'HS256', typ: 'ezsession+jwt', crit: ['exp'], exp: 1 }, { alg: 'HS256', typ: 'JWT' }, { alg: 'HS256' }]) {
        const response = await new SessionClient(app.running().url, 'bearer', forge(header, { ...own, admin: true })).get('/claims');
        assert.deepEqual(response.body, { claims: {} }, JSON.stringify(header));
      }
    });

    it("a gateway's Bearer token no longer hides the cookie session", async () => {
      const victim = await loggedIn(app.running().url);
      const gateway = forge({ alg: 'RS256', typ: 'JWT', kid: 'idp' }, { sub: 'user-1', iss: 'https://idp.example.test' });
      const response = await victim.get('/me', { authorization: `Bearer ${gateway}` });
      assert.deepEqual(response.body, { data: { owner: 'victim' } });
    });
  });

  describe(`cookie.secure 'auto' (${adapter})`, () => {
    const forwarded = { 'x-forwarded-proto': 'https' };
    describe('with the proxy trusted', () => {
      const app = serve(adapter, {}, { trustProxy: true });
      it('marks the cookie Secure on a request the proxy says came over HTTPS, and only then', async () => {
        assert.match((await new SessionClient(app.running().url).post('/login', undefined, forwarded)).setCookie ?? '', /; Secure;/);
        assert.doesNotMatch((await new SessionClient(app.running().url).post('/login')).setCookie ?? '', /Secure/);
      });
      it('clears the cookie with the same attribute', async () => {
        const client = await loggedIn(app.running().url);
        const logout = await client.post('/life/plain-logout', undefined, forwarded);
        assert.match(logout.setCookie ?? '', /^ezsession=; Max-Age=0; .*; Secure;/);
      });
    });
    describe('without trusting the proxy', () => {
      const app = serve(adapter);
      it('does not believe X-Forwarded-Proto', async () => {
        assert.doesNotMatch((await new SessionClient(app.running().url).post('/login', undefined, forwarded)).setCookie ?? '', /Secure/);
      });
    });
    describe('NODE_ENV=Production', () => {
      let saved: string | undefined;
      before(() => {
        saved = process.env.NODE_ENV;
        process.env.NODE_ENV = 'Production';
      });
      const app = serve(adapter);
      before(() => {
        if (saved === undefined) delete process.env.NODE_ENV;
        else process.env.NODE_ENV = saved;
      });
      it('marks every cookie Secure, plain HTTP included', async () => {
        assert.match((await new SessionClient(app.running().url).post('/login')).setCookie ?? '', /; Secure;/);
      });
    });
  });
}
