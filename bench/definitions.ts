/** The apps and scenarios of `npm run bench`: what runs where, and how each request is made. */

import { sessionData, type SessionSize } from './apps/session-data.js';

export type { SessionSize };
export type AppId = 'bare' | 'jwt-string' | 'jwt-key' | 'express-session' | 'ezsession' | 'ezsession-otel';
/** The scenarios as they always were, on the small session. */
export type BaseScenarioId = 'untouched' | 'claims-read' | 'stored-read' | 'write' | 'locked-inc' | 'locked-inc-1' | 'first-visit';
/** Every connection writes to ONE session at once: each its own key, or all the same key. */
export type ContentionId = 'contend-keys' | 'contend-key';
/** Each base scenario on the small session (its own id) and on the ~1 KB one (`-1k`); the contention scenarios on the small one. */
export type ScenarioId = BaseScenarioId | `${BaseScenarioId}-1k` | ContentionId;

/**
 * Which credentials a scenario sends: `none` (a first visit), `one` (one stored session, the same
 * on every request), `pool` (`BENCH_POOL` stored sessions, taken in turn), `single` (one stored
 * session for a write scenario, so every request contends for it).
 */
export type Credentials = 'none' | 'one' | 'pool' | 'single';

export interface ScenarioDef {
  id: ScenarioId;
  /** The same requests on the small session (a contention scenario is its own base). */
  base: BaseScenarioId | ContentionId;
  /** What the sessions hold: logins (and a first visit's write) ask for this size with `?size=1k`. */
  size: SessionSize;
  title: string;
  method: 'GET' | 'POST';
  path: string;
  credentials: Credentials;
  /** The scenario writes `n` by increments: the bench checks how many increments were stored. */
  counts?: boolean;
  /**
   * A contention scenario: connection i sends `POST /set?key=k<i>&value=…` (`keys`) or all send
   * `key=shared` (`key`), with a new value each request; `path` is only the probe's request.
   */
  contention?: 'keys' | 'key';
}

export interface AppDef {
  id: AppId;
  title: string;
  /** Compiled entry under build/bench/apps, and its arguments. */
  entry: string;
  args: string[];
  /** How a login sends its session back: a cookie, or a bearer token in the JSON body. */
  transport: 'cookie' | 'bearer' | 'none';
  cookieName?: string;
  scenarios: ScenarioId[];
  /** Per-scenario wording where this app does something different from the scenario's title (by base scenario: both sizes). */
  notes?: Partial<Record<BaseScenarioId | ContentionId, string>>;
  /** The app's control server answers GET /metrics with EzSessionService.metrics() (writes and write retries since boot). */
  metrics?: boolean;
}

const BASE_SCENARIOS: Record<BaseScenarioId, Pick<ScenarioDef, 'title' | 'method' | 'path' | 'credentials' | 'counts'>> = {
  untouched: { title: 'untouched: session token sent, handler ignores it', method: 'GET', path: '/plain', credentials: 'one' },
  'claims-read': { title: 'claims-read: read one claim', method: 'GET', path: '/claims', credentials: 'one' },
  'stored-read': { title: 'stored-read: read stored data (cache hit)', method: 'GET', path: '/me', credentials: 'one' },
  write: { title: 'write: set one key to a new value', method: 'POST', path: '/write', credentials: 'pool' },
  'locked-inc': { title: 'locked-inc: locked increment, pool of sessions', method: 'POST', path: '/inc', credentials: 'pool', counts: true },
  'locked-inc-1': { title: 'locked-inc, one session: every request contends', method: 'POST', path: '/inc', credentials: 'single', counts: true },
  'first-visit': { title: 'first-visit: no token, handler creates a session', method: 'POST', path: '/write', credentials: 'none' }
};

export const BASE_SCENARIO_ORDER: BaseScenarioId[] = ['untouched', 'claims-read', 'stored-read', 'write', 'locked-inc', 'locked-inc-1', 'first-visit'];

function sized(base: BaseScenarioId, size: SessionSize): ScenarioDef {
  const def = BASE_SCENARIOS[base];
  if (size === 'small') return { id: base, base, size, ...def };
  return {
    ...def,
    id: `${base}-1k`,
    base,
    size,
    title: `${def.title} (1 KB session)`,
    // A first visit has no login: its write asks for the session size itself.
    path: def.credentials === 'none' ? `${def.path}?size=1k` : def.path
  };
}

export const SIZES: SessionSize[] = ['small', '1k'];

const CONTENTION_SCENARIOS: ScenarioDef[] = [
  {
    id: 'contend-keys',
    base: 'contend-keys',
    size: 'small',
    title: 'contention, different keys: every connection writes its own key of ONE session',
    method: 'POST',
    path: '/set?key=probe&value=probe',
    credentials: 'single',
    contention: 'keys'
  },
  {
    id: 'contend-key',
    base: 'contend-key',
    size: 'small',
    title: 'contention, one key: every connection writes the same key of ONE session',
    method: 'POST',
    path: '/set?key=probe&value=probe',
    credentials: 'single',
    contention: 'key'
  }
];

export const CONTENTION_ORDER: ContentionId[] = ['contend-keys', 'contend-key'];

export const SCENARIO_ORDER: ScenarioId[] = [...SIZES.flatMap((size) => BASE_SCENARIO_ORDER.map((base) => sized(base, size).id)), ...CONTENTION_ORDER];

export const SCENARIOS = Object.fromEntries(
  [...SIZES.flatMap((size) => BASE_SCENARIO_ORDER.map((base) => sized(base, size))), ...CONTENTION_SCENARIOS].map((def) => [def.id, def])
) as Record<ScenarioId, ScenarioDef>;

/** The title of a session size, as the report shows it (what the login stores, before the app's own fields). */
export const SIZE_TITLES: Record<SessionSize, string> = {
  small: `small session (userId and a one-item cart: ${JSON.stringify(sessionData('small')).length} bytes of JSON)`,
  '1k': `1 KB session (userId, a user object and a 10-item cart: ${JSON.stringify(sessionData('1k')).length.toLocaleString('en-US')} bytes of JSON)`
};

export const APPS: Record<AppId, AppDef> = {
  bare: {
    id: 'bare',
    title: 'bare NestJS',
    entry: 'bare.app.js',
    args: [],
    transport: 'none',
    scenarios: ['untouched'],
    notes: { untouched: 'no session; sends a cookie of the same size' }
  },
  'jwt-string': {
    id: 'jwt-string',
    title: '@nestjs/jwt (string secret)',
    entry: 'jwt.app.js',
    args: ['string'],
    transport: 'bearer',
    scenarios: ['untouched', 'claims-read'],
    notes: { 'claims-read': 'guard: verifyAsync(bearer token)' }
  },
  'jwt-key': {
    id: 'jwt-key',
    title: '@nestjs/jwt (KeyObject secret)',
    entry: 'jwt.app.js',
    args: ['key'],
    transport: 'bearer',
    scenarios: ['untouched', 'claims-read'],
    notes: { 'claims-read': 'guard: verifyAsync(bearer token)' }
  },
  'express-session': {
    id: 'express-session',
    title: 'express-session + connect-redis',
    entry: 'express-session.app.js',
    args: [],
    transport: 'cookie',
    cookieName: 'connect.sid',
    scenarios: SCENARIO_ORDER,
    notes: {
      untouched: 'the middleware still loads and touches the session',
      'claims-read': 'reads req.session.role',
      'locked-inc': 'no lock: plain read-modify-write',
      'locked-inc-1': 'no lock: plain read-modify-write',
      'contend-keys': 'no merge: each save writes the whole session',
      'contend-key': 'no merge: each save writes the whole session'
    }
  },
  ezsession: {
    id: 'ezsession',
    title: 'EzSession (MySQL + Redis)',
    entry: 'ezsession.app.js',
    args: [],
    transport: 'cookie',
    cookieName: 'ezsession',
    scenarios: SCENARIO_ORDER,
    metrics: true,
    notes: {
      'claims-read': '@Jwt()',
      'stored-read': '@Session()',
      write: '@Session() (unlocked)',
      'locked-inc': '@Session({ lock: true })',
      'locked-inc-1': '@Session({ lock: true })',
      'first-visit': '@Session()',
      'contend-keys': '@Session() (unlocked)',
      'contend-key': '@Session() (unlocked)'
    }
  },
  // The same app with the OpenTelemetry SDK's MeterProvider and a periodic metric reader installed (issue 20: what observability costs).
  'ezsession-otel': {
    id: 'ezsession-otel',
    title: 'EzSession + OpenTelemetry SDK',
    entry: 'ezsession.app.js',
    args: ['otel'],
    transport: 'cookie',
    cookieName: 'ezsession',
    scenarios: ['untouched', 'stored-read', 'write'],
    metrics: true,
    notes: { untouched: 'SDK + metric reader installed', 'stored-read': 'SDK + metric reader installed', write: 'SDK + metric reader installed' }
  }
};

export const APP_ORDER: AppId[] = ['bare', 'jwt-string', 'jwt-key', 'express-session', 'ezsession', 'ezsession-otel'];
