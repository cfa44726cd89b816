import type { AutocannonRequest, Client } from 'autocannon';
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

/** What autocannon is given for one stretch of a scenario's load. */
export interface LoadPlan {
  requests: AutocannonRequest[];
  setupClient?: (client: Client) => void;
  /** Contention scenarios: what each connection wrote and had acknowledged. */
  contention?: ContentionLoad;
}

/**
 * The load of a scenario. `phase` (warm-up, window, sample) goes into the values a contention
 * scenario writes, so that the check after the window can tell the window's writes from earlier ones.
 */
export function loadFor(scenario: ScenarioDef, sessions: Headers[], phase: string): LoadPlan {
  if (!scenario.contention) return { requests: requestsFor(scenario, sessions) };
  const contention = new ContentionLoad(scenario.contention, sessions[0], phase);
  // The list autocannon starts each connection with; setupClient replaces it before the first request.
  return { requests: [requestFor(scenario, sessions)], setupClient: contention.setupClient, contention };
}

/**
 * Every connection writes to one session, each request a new value: connection i to key `k<i>`
 * (`keys`), or all of them to `shared` (`key`). Remembers the last value each connection had
 * acknowledged; a connection sends its next request only after the answer to the last, so once the
 * load is over, the session must hold:
 * - `keys`: every connection's last acknowledged value under its own key (a different value or no
 *   value means a write was lost, e.g. overwritten by a whole-session save that had not seen it);
 * - `key`: the last acknowledged value of one of the connections (the last writer's); any other
 *   value means an older write landed after a newer one.
 */
export class ContentionLoad {
  readonly acknowledged = new Map<number, string>();
  private clients = 0;

  constructor(
    readonly mode: 'keys' | 'key',
    private readonly session: Headers,
    private readonly phase: string
  ) {}

  keyOf(connection: number): string {
    return this.mode === 'keys' ? `k${connection}` : 'shared';
  }

  readonly setupClient = (client: Client): void => {
    const connection = this.clients++;
    const key = this.keyOf(connection);
    let sequence = 0;
    // No pipelining: the request a response answers is the last one built.
    let inFlight = '';
    client.setRequests([
      {
        method: 'POST',
        headers: { ...BROWSER, ...this.session },
        setupRequest: (request) => {
          inFlight = `${this.phase}-${connection}-${++sequence}`;
          request.path = `/set?key=${key}&value=${inFlight}`;
          return request;
        },
        onResponse: (status) => {
          if (status >= 200 && status < 300) this.acknowledged.set(connection, inFlight);
        }
      }
    ]);
  };

  /** The keys this load wrote (one per connection, or the shared one) and those `data` does not hold as it should. */
  lostIn(data: Record<string, unknown> | undefined): { keys: number; lost: string[] } {
    if (this.mode === 'key') {
      const last = new Set(this.acknowledged.values());
      return { keys: 1, lost: last.has(data?.shared as string) ? [] : ['shared'] };
    }
    const lost = [...this.acknowledged].filter(([connection, value]) => data?.[this.keyOf(connection)] !== value).map(([connection]) => this.keyOf(connection));
    return { keys: this.acknowledged.size, lost };
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

/** The whole session as the app reads it (GET /all), for the contention check. */
export async function readAll(url: string, headers: Headers): Promise<Record<string, unknown>> {
  const response = await fetch(`${url}/all`, { headers: { ...BROWSER, ...headers } });
  if (!response.ok) throw new Error(`GET /all answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as Record<string, unknown>;
}

/**
 * The session id a login's cookie carries, to read the session from the store itself: the `sid`
 * claim of EzSession's token, the id inside express-session's signed cookie (`s:<id>.<signature>`).
 */
export function sessionIdOf(app: AppDef, headers: Headers): string {
  const value = headers.cookie?.startsWith(`${app.cookieName}=`) ? decodeURIComponent(headers.cookie.slice(app.cookieName!.length + 1)) : undefined;
  if (value && app.id === 'ezsession') {
    const claims = JSON.parse(Buffer.from(value.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sid?: string };
    if (claims.sid) return claims.sid;
  }
  const signed = value && app.id === 'express-session' ? /^s:([^.]+)\./.exec(value) : null;
  if (signed) return signed[1];
  throw new Error(`${app.id}: no session id in ${JSON.stringify(headers)}`);
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
