/** The apps and scenarios of `npm run bench`: what runs where, and how each request is made. */

export type AppId = 'bare' | 'jwt-string' | 'jwt-key' | 'express-session' | 'ezsession';
export type ScenarioId =
  | 'untouched'
  | 'claims-read'
  | 'stored-read'
  | 'write'
  | 'locked-inc'
  | 'locked-inc-1'
  | 'first-visit';

/**
 * Which credentials a scenario sends: `none` (a first visit), `one` (one stored session, the same
 * on every request), `pool` (`BENCH_POOL` stored sessions, taken in turn), `single` (one stored
 * session for a write scenario, so every request contends for it).
 */
export type Credentials = 'none' | 'one' | 'pool' | 'single';

export interface ScenarioDef {
  id: ScenarioId;
  title: string;
  method: 'GET' | 'POST';
  path: string;
  credentials: Credentials;
  /** The scenario writes `n` by increments: the bench checks how many increments were stored. */
  counts?: boolean;
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
  /** Per-scenario wording where this app does something different from the scenario's title. */
  notes?: Partial<Record<ScenarioId, string>>;
}

export const SCENARIOS: Record<ScenarioId, ScenarioDef> = {
  untouched: { id: 'untouched', title: 'untouched: session token sent, handler ignores it', method: 'GET', path: '/plain', credentials: 'one' },
  'claims-read': { id: 'claims-read', title: 'claims-read: read one claim', method: 'GET', path: '/claims', credentials: 'one' },
  'stored-read': { id: 'stored-read', title: 'stored-read: read stored data (cache hit)', method: 'GET', path: '/me', credentials: 'one' },
  write: { id: 'write', title: 'write: set one key to a new value', method: 'POST', path: '/write', credentials: 'pool' },
  'locked-inc': { id: 'locked-inc', title: 'locked-inc: locked increment, pool of sessions', method: 'POST', path: '/inc', credentials: 'pool', counts: true },
  'locked-inc-1': { id: 'locked-inc-1', title: 'locked-inc, one session: every request contends', method: 'POST', path: '/inc', credentials: 'single', counts: true },
  'first-visit': { id: 'first-visit', title: 'first-visit: no token, handler creates a session', method: 'POST', path: '/write', credentials: 'none' }
};

export const SCENARIO_ORDER: ScenarioId[] = ['untouched', 'claims-read', 'stored-read', 'write', 'locked-inc', 'locked-inc-1', 'first-visit'];

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
    scenarios: ['untouched', 'claims-read', 'stored-read', 'write', 'locked-inc', 'locked-inc-1', 'first-visit'],
    notes: {
      untouched: 'the middleware still loads and touches the session',
      'claims-read': 'reads req.session.role',
      'locked-inc': 'no lock: plain read-modify-write',
      'locked-inc-1': 'no lock: plain read-modify-write'
    }
  },
  ezsession: {
    id: 'ezsession',
    title: 'EzSession (MySQL + Redis)',
    entry: 'ezsession.app.js',
    args: [],
    transport: 'cookie',
    cookieName: 'ezsession',
    scenarios: ['untouched', 'claims-read', 'stored-read', 'write', 'locked-inc', 'locked-inc-1', 'first-visit'],
    notes: {
      'claims-read': '@Jwt()',
      'stored-read': '@Session()',
      write: '@Session() (unlocked)',
      'locked-inc': '@Session({ lock: true })',
      'locked-inc-1': '@Session({ lock: true })',
      'first-visit': '@Session()'
    }
  }
};

export const APP_ORDER: AppId[] = ['bare', 'jwt-string', 'jwt-key', 'express-session', 'ezsession'];
