import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { chromium, type Browser, type Cookie, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from '../support/chromium.js';
import { AppModule } from '../../sample/app.module.js';
import { freePort } from '../support/free-port.js';
import { testEnv } from '../support/test-env.js';


describe('sample app on MariaDB and Redis, driven by Chromium', { timeout: 120_000 }, () => {
  let app: INestApplication;
  let browser: Browser;
  let baseUrl: string;

  before(async () => {
    requireChromium();
    // The sample's AppModule reads MYSQL_URL and REDIS_URL when it is created: those of the test servers.
    testEnv();
    app = await NestFactory.create(AppModule, new ExpressAdapter(), { logger: ['error'] });
    const port = await freePort();
    await app.listen(port, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${port}`;
    // launch() gives every browser a fresh, temporary user data dir.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  });

  after(async () => {
    await browser?.close();
    await app?.close();
  });

  /** A page in a new browser context: no cookies from other tests. */
  async function freshPage(t: TestContext): Promise<Page> {
    const context = await browser.newContext();
    t.after(() => context.close());
    const page = await context.newPage();
    await page.goto(`${baseUrl}/`);
    return page;
  }

  /** Clicks a form button and waits for the page it redirects to (POST, 303, GET /) to load. */
  async function submit(page: Page, button: string): Promise<void> {
    await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: button, exact: true }).click()]);
  }

  async function logIn(page: Page, name: string): Promise<void> {
    await page.getByLabel('Name').fill(name);
    await submit(page, 'Log in');
  }

  async function sessionCookie(page: Page): Promise<Cookie> {
    const cookie = (await page.context().cookies()).find(({ name }) => name === 'ezsession');
    assert.ok(cookie, 'the browser holds the session cookie');
    return cookie;
  }

  function sessionIdOf(cookie: Cookie): string {
    return JSON.parse(Buffer.from(cookie.value.split('.')[1], 'base64url').toString('utf8')).sid;
  }

  async function notice(page: Page): Promise<string | null> {
    const element = page.locator('#notice');
    return (await element.count()) === 0 ? null : element.textContent();
  }

  it('sets no cookie on the first visit', async (t) => {
    const page = await freshPage(t);

    assert.deepEqual(await page.context().cookies(), []);
    assert.equal(await page.getByLabel('Name').count(), 1, 'the login form is shown');
  });

  it('sets an HttpOnly, SameSite=Lax cookie on login and shows the name and role', async (t) => {
    const page = await freshPage(t);
    await logIn(page, 'Ada <Lovelace>');

    const cookies = await page.context().cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0].name, 'ezsession');
    assert.equal(cookies[0].httpOnly, true);
    assert.equal(cookies[0].sameSite, 'Lax');
    assert.equal(cookies[0].path, '/');
    assert.equal(await page.evaluate('document.cookie'), '', 'page scripts cannot read the session cookie');
    assert.equal(await page.locator('#user').textContent(), 'Logged in as Ada <Lovelace>');
    assert.equal(await page.locator('#role').textContent(), 'member');
  });

  it('increments the counter on every click', async (t) => {
    const page = await freshPage(t);

    for (const expected of ['1', '2', '3']) {
      await submit(page, 'Count');
      assert.equal(await page.locator('#counter').textContent(), expected);
    }
    await page.reload();
    assert.equal(await page.locator('#counter').textContent(), '3');
  });

  it('shows a flash message exactly once', async (t) => {
    const page = await freshPage(t);
    await logIn(page, 'Grace');
    assert.equal(await notice(page), 'Logged in as Grace');

    await page.reload();
    assert.equal(await notice(page), null);
    assert.equal(await page.locator('#user').textContent(), 'Logged in as Grace');

    await submit(page, 'Count');
    assert.equal(await notice(page), 'Counter is now 1');
    await page.reload();
    assert.equal(await notice(page), null);
  });

  it('shows the logout message and then the login form after logout', async (t) => {
    const page = await freshPage(t);
    await logIn(page, 'Linus');
    await submit(page, 'Count');
    await submit(page, 'Log out');

    assert.equal(await notice(page), 'Logged out');
    assert.equal(await page.locator('#user').count(), 0);
    assert.equal(await page.getByLabel('Name').count(), 1);
    assert.equal(await page.locator('#counter').textContent(), '0');
    assert.equal(await page.locator('#role').textContent(), 'none');

    await page.reload();
    assert.equal(await notice(page), null);
    assert.equal(await page.getByLabel('Name').count(), 1);
  });

  it('gives the session a new id at login and keeps its data', async (t) => {
    const page = await freshPage(t);
    await submit(page, 'Count');
    const before = sessionIdOf(await sessionCookie(page));

    await logIn(page, 'Ada');

    assert.notEqual(sessionIdOf(await sessionCookie(page)), before);
    assert.equal(await page.locator('#counter').textContent(), '1');
  });

  it('no longer accepts the old cookie after logout', async (t) => {
    const page = await freshPage(t);
    await logIn(page, 'Mallory');
    const loggedIn = await sessionCookie(page);
    await submit(page, 'Log out');

    await page.context().addCookies([loggedIn]);
    await page.reload();
    assert.equal(await page.locator('#user').count(), 0);
    assert.equal(await page.locator('#role').textContent(), 'none');
  });

  it('Devices: two browsers signed in as one user see two rows; signing the other out from the first logs it out on its next request', async (t) => {
    const laptop = await freshPage(t);
    const phone = await freshPage(t);
    await logIn(laptop, 'Devi');
    await phone.getByLabel('Remember me').check();
    await logIn(phone, 'Devi');

    await laptop.goto(`${baseUrl}/devices`);
    const rows = laptop.locator('tr.device-row');
    assert.equal(await rows.count(), 2);
    assert.equal(await laptop.locator('tr.device-row[data-current="true"]').count(), 1);
    assert.match(String(await laptop.locator('tr.device-row[data-current="true"] .device').textContent()), /Chrome.* on Linux \(this device\)/);
    const phoneSid = sessionIdOf(await sessionCookie(phone));
    assert.equal(await laptop.locator(`form[action="/devices/${phoneSid}/revoke"]`).count(), 1);

    await Promise.all([laptop.waitForEvent('load'), laptop.locator(`form[action="/devices/${phoneSid}/revoke"] button`).click()]);
    assert.equal(await notice(laptop), 'Signed out of that device');
    assert.equal(await laptop.locator('tr.device-row').count(), 1);

    await phone.reload();
    assert.equal(await phone.locator('#user').count(), 0, 'the other browser is signed out');
    assert.equal(await phone.getByLabel('Name').count(), 1);
    await laptop.goto(`${baseUrl}/`);
    assert.equal(await laptop.locator('#user').textContent(), 'Logged in as Devi');
  });

  it('Devices: "sign out of all other devices", and "remember me" keeps the cookie past the browser session', async (t) => {
    const first = await freshPage(t);
    const others = [await freshPage(t), await freshPage(t)];
    await logIn(first, 'Evi');
    for (const page of others) await logIn(page, 'Evi');
    assert.equal((await sessionCookie(first)).expires, -1, 'without "remember me", a browser-session cookie');

    await first.goto(`${baseUrl}/devices`);
    assert.equal(await first.locator('tr.device-row').count(), 3);
    await submit(first, 'Sign out of all other devices');
    assert.equal(await notice(first), 'Signed out of 2 other devices');
    assert.equal(await first.locator('tr.device-row').count(), 1);
    for (const page of others) {
      await page.reload();
      assert.equal(await page.locator('#user').count(), 0);
    }

    const remembered = await freshPage(t);
    await remembered.getByLabel('Remember me').check();
    await logIn(remembered, 'Evi');
    const cookie = await sessionCookie(remembered);
    assert.ok(cookie.expires > Date.now() / 1000 + 29 * 86400, 'a remembered session keeps its cookie for 30 days');
  });

  it('lets a header client log in over JSON and read /api/me with the bearer token', async () => {
    const login = await fetch(`${baseUrl}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Api' })
    });
    assert.equal(login.status, 200);
    assert.deepEqual(await login.json(), { user: { name: 'Api' }, role: 'member' });
    const token = login.headers.get('x-session-token');
    assert.ok(token, 'the login response carries the token in x-session-token');

    const me = await fetch(`${baseUrl}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 200);
    assert.deepEqual(await me.json(), { user: { name: 'Api' }, role: 'member', counter: 0 });

    const logout = await fetch(`${baseUrl}/api/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(logout.status, 204);
    const afterLogout = await fetch(`${baseUrl}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(afterLogout.status, 401);
  });

  it('refuses /api/me without a signed-in session with 401 and a body naming what is missing', async () => {
    const anonymous = await fetch(`${baseUrl}/api/me`);
    assert.equal(anonymous.status, 401);
    assert.deepEqual(((await anonymous.json()) as { missing: unknown }).missing, { keys: ["user"], claims: [] });
  });
});
