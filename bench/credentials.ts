import type { AutocannonRequest } from 'autocannon';
import type { AppDef, ScenarioDef, SessionSize } from './definitions.js';

export type Headers = Record<string, string>;

/**
 * The bare app has no session: its requests carry a cookie as long as EzSession's, so every app
 * parses requests of about the same size.
 */
const DUMMY_COOKIE = { cookie: `ezsession=${'x'.repeat(300)}` };

/**
 * Every request of every app, logins included, carries the same browser User-Agent: EzSession binds
 * its tokens to the User-Agent by default, and a browser always sends one.
 */
export const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const BROWSER = { 'user-agent': USER_AGENT };

/** Logs in once (POST /login, storing a session of `size`) and returns the headers that carry the new session. */
export async function login(app: AppDef, url: string, size: SessionSize = 'small'): Promise<Headers> {
  if (app.transport === 'none') return { ...DUMMY_COOKIE };
  const response = await fetch(`${url}/login${size === 'small' ? '' : `?size=${size}`}`, { method: 'POST', headers: BROWSER });
  if (response.status !== 200) throw new Error(`${app.id}: POST /login answered ${response.status}: ${await response.text()}`);
  if (app.transport === 'bearer') {
    const { token } = (await response.json()) as { token: string };
    return { authorization: `Bearer ${token}` };
  }
  await response.arrayBuffer();
  const name = app.cookieName!;
  for (const header of response.headers.getSetCookie()) {
    const pair = header.split(';', 1)[0];
    if (pair.startsWith(`${name}=`)) return { cookie: pair };
  }
  throw new Error(`${app.id}: POST /login set no ${name} cookie`);
}

/** The sessions a scenario needs, logged in before the warm-up. */
export async function prepareSessions(app: AppDef, scenario: ScenarioDef, url: string, pool: number): Promise<Headers[]> {
  switch (scenario.credentials) {
    case 'none':
      return [];
    case 'one':
    case 'single':
      return [await login(app, url, scenario.size)];
    case 'pool': {
      const sessions: Headers[] = [];
      for (let i = 0; i < pool; i++) sessions.push(await login(app, url, scenario.size));
      return sessions;
    }
  }
}

/** The autocannon request list: a fixed request, or one that takes the pool's sessions in turn. */
export function requestsFor(scenario: ScenarioDef, sessions: Headers[]): AutocannonRequest[] {
  return [requestFor(scenario, sessions)];
}

export function requestFor(scenario: ScenarioDef, sessions: Headers[]): AutocannonRequest {
  const base = { method: scenario.method, path: scenario.path, headers: { ...BROWSER } };
  if (sessions.length === 0) return base;
  if (sessions.length === 1) return { ...base, headers: { ...BROWSER, ...sessions[0] } };
  let next = 0;
  return {
    ...base,
    setupRequest: (request) => {
      request.headers = { ...request.headers, ...sessions[next++ % sessions.length] };
      return request;
    }
  };
}

/** Reads `n` (the increments stored) of each session. */
export async function storedCount(url: string, sessions: Headers[]): Promise<number> {
  let total = 0;
  for (const headers of sessions) {
    const response = await fetch(`${url}/me`, { headers: { ...BROWSER, ...headers } });
    const body = (await response.json()) as { n?: number | null };
    total += body.n ?? 0;
  }
  return total;
}

/**
 * One request as the load will send it, checked before the warm-up: the right status, the data the
 * scenario reads, and (for requests with a session) no new session issued in its place, which would
 * mean the app refused the token and the run would measure something else. Returns the problem, if any.
 */
export async function probe(app: AppDef, scenario: ScenarioDef, url: string, sessions: Headers[]): Promise<string | undefined> {
  const response = await fetch(`${url}${scenario.path}`, { method: scenario.method, headers: { ...BROWSER, ...(sessions[0] ?? {}) } });
  const text = await response.text();
  const what = `${app.id} ${scenario.method} ${scenario.path}`;
  if (response.status < 200 || response.status >= 300) return `${what} answered ${response.status}: ${text.slice(0, 200)}`;
  const body = JSON.parse(text) as Record<string, unknown>;
  const base = scenario.base;
  const expected: Record<string, unknown> =
    base === 'claims-read' ? { role: 'admin' } : base === 'stored-read' ? { userId: 42 } : base === 'untouched' ? { ok: true } : {};
  for (const [key, value] of Object.entries(expected)) {
    if (body[key] !== value) return `${what} returned ${text.slice(0, 200)}, expected ${key}: ${JSON.stringify(value)}`;
  }
  // The session read is the size the scenario says: one cart item on the small session, ten on the 1 KB one.
  const items = scenario.size === '1k' ? 10 : 1;
  if (base === 'stored-read' && (!Array.isArray(body.cart) || body.cart.length !== items)) {
    return `${what} returned a cart of ${Array.isArray(body.cart) ? body.cart.length : 'no'} items, expected ${items} (${scenario.size} session)`;
  }
  const issued = response.headers.getSetCookie().some((cookie) => app.cookieName !== undefined && cookie.startsWith(`${app.cookieName}=`));
  if (sessions.length > 0 && issued) return `${what} issued a new session cookie: the app did not accept the session it was sent`;
  if (scenario.credentials === 'none' && app.transport === 'cookie' && !issued) return `${what} without a session did not create one`;
  return undefined;
}
