import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { GraphQLModule } from '@nestjs/graphql';
import { MercuriusDriver, type MercuriusDriverConfig } from '@nestjs/mercurius';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from '../support/chromium.js';
import { EzSessionService } from '../../lib/index.js';
import { BrowserPagesController } from '../fixtures/browser-pages.controller.js';
import { ADAPTERS, startApp, type AdapterName, type RunningApp } from '../fixtures/fixture-app.js';
import { SessionResolver } from '../fixtures/graphql.resolver.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';

// Issue 18 items 1 and 6 in real Chromium. Every *.test name resolves to 127.0.0.1, so one server
// answers as the app (app.*), as a sibling subdomain (evil.*, same-site) and as another site. Two
// sets of names: over plain HTTP Chromium sends no fetch metadata (only Origin); the names it is
// told to treat as secure get Sec-Fetch-Site, as every origin over HTTPS does.

interface Names {
  what: string;
  app: string;
  sibling: string;
  otherSite: string;
  /** Chromium sends Sec-Fetch-* to these. */
  secure: boolean;
}

const NAMES: Names[] = [
  { what: 'Origin only (plain HTTP)', app: 'app.example.test', sibling: 'evil.example.test', otherSite: 'attacker.test', secure: false },
  { what: 'Sec-Fetch-Site (a secure origin)', app: 'app.meta.test', sibling: 'evil.meta.test', otherSite: 'attacker-meta.test', secure: true }
];


function graphqlModule(adapter: AdapterName) {
  return adapter === 'express'
    ? GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true })
    : GraphQLModule.forRoot<MercuriusDriverConfig>({ driver: MercuriusDriver, autoSchemaFile: true, csrfPrevention: true });
}

describe('cross-origin requests and the token header in Chromium', { timeout: 240_000 }, () => {
  const apps = new Map<AdapterName, RunningApp>();
  let browser: Browser;

  before(async () => {
    requireChromium();
    for (const adapter of ADAPTERS) {
      apps.set(adapter, await startApp(adapter, realStoreOptions(), { controllers: [BrowserPagesController], imports: [graphqlModule(adapter)], providers: [SessionResolver] }));
    }
    const secureOrigins = [...apps.values()].flatMap(({ url }) => {
      const port = new URL(url).port;
      return NAMES.filter((names) => names.secure).flatMap((names) => [names.app, names.sibling, names.otherSite].map((host) => `http://${host}:${port}`));
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP *.test 127.0.0.1', `--unsafely-treat-insecure-origin-as-secure=${secureOrigins.join(',')}`], headless: true });
  });

  after(async () => {
    await browser?.close();
    for (const app of apps.values()) await app.close();
  });

  for (const adapter of ADAPTERS) {
    for (const names of NAMES) {
      describe(`${adapter}, ${names.what}`, () => {
        const port = () => new URL(apps.get(adapter)!.url).port;
        const origin = (host: string) => `http://${host}:${port()}`;
        const stored = (token: string) => apps.get(adapter)!.app.get(EzSessionService).read(claimsOf(token).sid);

        async function context(t: TestContext): Promise<BrowserContext> {
          const created = await browser.newContext();
          t.after(() => created.close());
          return created;
        }

        /** The session cookie the browser holds for the app. */
        async function sessionCookie(browserContext: BrowserContext): Promise<string> {
          const cookie = (await browserContext.cookies(origin(names.app))).find(({ name }) => name === 'ezsession');
          assert.ok(cookie, 'the browser holds the session cookie');
          return cookie.value;
        }

        /** Clicks a button of the app's page and waits for the page the form redirects to. */
        async function submit(page: Page, button: string): Promise<void> {
          await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: button, exact: true }).click()]);
        }

        async function signedIn(t: TestContext): Promise<{ browserContext: BrowserContext; page: Page }> {
          const browserContext = await context(t);
          const page = await browserContext.newPage();
          await page.goto(`${origin(names.app)}/page`);
          await submit(page, 'Log in');
          await submit(page, 'Count');
          assert.deepEqual(JSON.parse((await page.locator('#state').textContent())!), { user: 'alice', count: 1 });
          return { browserContext, page };
        }

        /** Opens the attacker's page on `attackerHost`, which posts to the app as it loads; the status the app answered. */
        async function attack(browserContext: BrowserContext, attackerHost: string, kind: 'form' | 'fetch' | 'graphql', path: string): Promise<{ status: number; body: string }> {
          const page = await browserContext.newPage();
          try {
            const action = `${origin(names.app)}${path}`;
            const answered = page.waitForResponse((response) => response.url() === action && response.request().method() === 'POST', { timeout: 15_000 });
            await page.goto(`${origin(attackerHost)}/attack?kind=${kind}&action=${encodeURIComponent(action)}`);
            const response = await answered;
            return { status: response.status(), body: await response.text().catch(() => '') };
          } finally {
            await page.close();
          }
        }

        it('after a cookie login, fetch from the page sees no x-session-token; the cookie still renews', async (t) => {
          const { browserContext, page } = await signedIn(t);
          const before = await sessionCookie(browserContext);
          const seen = await page.evaluate(async () => {
            const response = await fetch('/page/claim', { method: 'POST' });
            return { status: response.status, header: response.headers.get('x-session-token'), body: await response.json() };
          });
          assert.deepEqual(seen, { status: 200, header: null, body: { n: 1 } });
          assert.equal(await page.evaluate('document.cookie'), '', 'page scripts cannot read the cookie either');
          const after = await sessionCookie(browserContext);
          assert.notEqual(after, before);
          assert.equal(claimsOf(after).n, 1, 'the new token went into the HttpOnly cookie');
        });

        it('a Node client still gets the header, and a Bearer fetch from the page gets it too', async (t) => {
          const page = await (await context(t)).newPage();
          await page.goto(`${origin(names.app)}/page`);
          // The token is bound to the user agent: the Node client logs in as the browser's.
          const userAgent = String(await page.evaluate('navigator.userAgent'));
          const login = await new SessionClient(apps.get(adapter)!.url).post('/page/login', undefined, { 'user-agent': userAgent });
          assert.equal(login.status, 303);
          assert.ok(login.issued, 'a client with no Sec-Fetch-Site and no Origin gets the header');
          const header = await page.evaluate(async (token) => {
            const response = await fetch('/page/claim', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
            return response.headers.get('x-session-token');
          }, login.issued);
          assert.ok(header, 'the header goes back to a Bearer request');
          assert.equal(claimsOf(header).n, 1);
          assert.equal(claimsOf(header).sid, claimsOf(login.issued).sid);
        });

        it('a sibling subdomain and another site post a form and a no-cors fetch: all refused with 403, the session unchanged', async (t) => {
          const { browserContext, page } = await signedIn(t);
          const cookie = await sessionCookie(browserContext);
          for (const attacker of [names.sibling, names.otherSite]) {
            for (const kind of ['form', 'fetch'] as const) {
              const { status, body } = await attack(browserContext, attacker, kind, '/page/count');
              assert.equal(status, 403, `${kind} from ${attacker}`);
              // A no-cors answer is opaque, to the page and to the browser's tooling alike: only the form's body can be read.
              if (kind === 'form') assert.match(body, /SessionCsrfRefused/, `${kind} from ${attacker}: EzSession's refusal`);
            }
          }
          assert.deepEqual(await stored(cookie), { user: 'alice', count: 1 });
          assert.equal(await sessionCookie(browserContext), cookie, 'no new cookie');

          // The app's own form and fetch still work.
          await page.reload();
          await submit(page, 'Count');
          assert.deepEqual(JSON.parse((await page.locator('#state').textContent())!), { user: 'alice', count: 2 });
          const own = await page.evaluate(async () => {
            const response = await fetch('/page/count', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'by=10' });
            return { ok: response.ok, redirected: response.redirected };
          });
          assert.deepEqual(own, { ok: true, redirected: true });
          assert.deepEqual(await stored(await sessionCookie(browserContext)), { user: 'alice', count: 12 });
        });

        it(`${adapter === 'express' ? "Apollo's csrfPrevention" : "Mercurius's csrfPrevention"} still answers a simple cross-origin GraphQL post; the page's own GraphQL works`, async (t) => {
          const { browserContext, page } = await signedIn(t);
          const cookie = await sessionCookie(browserContext);
          const { status, body } = await attack(browserContext, names.sibling, 'graphql', '/graphql');
          assert.equal(status, 400);
          assert.doesNotMatch(body, /SESSION_CSRF_REFUSED/, 'refused by the GraphQL server before any resolver ran');
          assert.deepEqual(await stored(cookie), { user: 'alice', count: 1 });
          const own = await page.evaluate(async () => {
            const response = await fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'mutation { setKey(key: "note", value: "own") }' }) });
            return { status: response.status, body: await response.json(), header: response.headers.get('x-session-token') };
          });
          assert.deepEqual(own, { status: 200, body: { data: { setKey: true } }, header: null });
          assert.deepEqual(await stored(cookie), { user: 'alice', count: 1, note: 'own' });
        });
      });
    }
  }
});
