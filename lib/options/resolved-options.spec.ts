import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { systemClock } from '../clock/session-clock.js';
import { EzSessionConfigError } from '../ez-session.errors.js';
import type { EzSessionModuleOptions } from '../interfaces/ez-session-options.interface.js';
import { resolveOptions, type ResolvedOptions } from './resolved-options.js';

const SECRET = 'unit-test-secret-4f8a2c6e0b9d1f3a5c7e9b2d4f6a8c0e';
const DATABASE = { type: 'mysql', host: 'db.internal', username: 'app', database: 'app' } as const;
const BASE = { secret: SECRET, database: DATABASE } as EzSessionModuleOptions;

/** The options of `patch` over a valid minimum; `as any` lets the specs pass what JavaScript callers could. */
function resolve(patch: Record<string, unknown> = {}): ResolvedOptions {
  return resolveOptions({ ...BASE, ...patch } as any);
}

/** Asserts that resolving `patch` throws an EzSessionConfigError naming `option` (and saying exactly `problem`, when given). */
function refuses(patch: Record<string, unknown> | undefined, option: string, problem?: string | RegExp): void {
  assert.throws(
    () => (patch === undefined ? resolveOptions(undefined) : resolve(patch)),
    (error: unknown) => {
      assert.ok(error instanceof EzSessionConfigError, `expected an EzSessionConfigError naming "${option}", got ${String(error)}`);
      assert.equal(error.option, option);
      assert.ok(error.message.startsWith(`EzSession option "${option}" `), error.message);
      if (problem instanceof RegExp) assert.match(error.message, problem);
      else if (problem !== undefined) assert.equal(error.message, `EzSession option "${option}" ${problem}`);
      return true;
    },
    `${JSON.stringify(patch)} should be refused naming "${option}"`
  );
}

/** Runs `action` with NODE_ENV set to `value` (deleted for undefined), then restores it. */
function withNodeEnv<T>(value: string | undefined, action: () => T): T {
  const saved = process.env.NODE_ENV;
  if (value === undefined) delete process.env.NODE_ENV;
  else process.env.NODE_ENV = value;
  try {
    return action();
  } finally {
    if (saved === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = saved;
  }
}

describe('resolveOptions', () => {
  describe('defaults', () => {
    it('fills in every default around the secret and the database', () => {
      const resolved = withNodeEnv(undefined, () => resolve());
      const { keys, database, ...rest } = resolved;
      assert.equal(database, DATABASE);
      assert.equal(keys.length, 1);
      assert.deepEqual(rest, {
        dialect: 'mysql',
        redis: undefined,
        cookie: { name: 'ezsession', secure: 'auto', sameSite: 'lax', domain: undefined, path: '/' },
        headerName: 'x-session-token',
        tokenHeader: 'auto',
        csrf: { trustedOrigins: new Set() },
        issuer: undefined,
        audience: undefined,
        tableName: 'ez_sessions',
        keyPrefix: 'ezsession:',
        createTable: true,
        idleTimeout: 7200,
        absoluteTimeout: 86400,
        gcInterval: 600,
        gcBatchSize: 1000,
        bind: { userAgent: true, ip: false, custom: undefined },
        userId: undefined,
        hooks: {},
        cacheTtl: 3600,
        lockTimeout: 5,
        maxSessionBytes: 1024 * 1024,
        clockSkew: 30,
        redisCommandTimeout: 500,
        guard: undefined,
        revocationSyncInterval: 5,
        clock: systemClock
      });
    });

    it('makes one signing key of a string secret, without an id', () => {
      const [key] = resolve().keys;
      assert.equal(key.id, undefined);
      assert.equal(key.key.type, 'secret');
      assert.deepEqual(key.key.export(), Buffer.from(SECRET, 'utf8'));
    });

    it('keeps a key ring in order, with its ids', () => {
      const ring = [
        { id: 'new', secret: SECRET },
        { id: 'old', secret: 'older-unit-secret-1a3c5e7g9i2k4m6o8q0s' }
      ];
      const keys = resolve({ secret: ring }).keys;
      assert.deepEqual(keys.map((key) => key.id), ['new', 'old']);
      assert.deepEqual(keys[1].key.export(), Buffer.from(ring[1].secret, 'utf8'));
    });

    it("makes the cookie Secure by default when NODE_ENV is production, in any letter case; else 'auto' (per request)", () => {
      for (const env of ['production', 'Production', 'PRODUCTION', ' production ']) {
        assert.equal(withNodeEnv(env, () => resolve()).cookie.secure, true, env);
        assert.equal(withNodeEnv(env, () => resolve({ cookie: { secure: 'auto' } })).cookie.secure, true, env);
      }
      for (const env of ['development', 'prod', 'test', undefined]) assert.equal(withNodeEnv(env, () => resolve()).cookie.secure, 'auto', String(env));
      assert.equal(withNodeEnv('production', () => resolve({ cookie: { secure: false } })).cookie.secure, false);
      assert.equal(withNodeEnv('development', () => resolve({ cookie: { secure: true } })).cookie.secure, true);
    });

    it("makes 'auto' always Secure for sameSite 'none' and prefixed names, which browsers drop otherwise", () => {
      assert.equal(withNodeEnv('development', () => resolve({ cookie: { sameSite: 'none' } })).cookie.secure, true);
      assert.equal(withNodeEnv('development', () => resolve({ cookie: { name: '__Host-s' } })).cookie.secure, true);
      assert.equal(withNodeEnv('development', () => resolve({ cookie: { name: '__secure-s' } })).cookie.secure, true);
    });

    it('refuses a cookie.secure that is not true, false or auto', () => {
      refuses({ cookie: { secure: 'yes' as never } }, 'cookie.secure', `must be true, false or 'auto'; got "yes"`);
    });

    it('takes tokenHeader auto, always or never, and refuses anything else', () => {
      for (const mode of ['auto', 'always', 'never'] as const) assert.equal(resolve({ tokenHeader: mode }).tokenHeader, mode);
      refuses({ tokenHeader: 'sometimes' as never }, 'tokenHeader', `must be 'auto', 'always' or 'never'; got "sometimes"`);
    });

    it('turns csrf off with false and keeps trusted origins exactly as given', () => {
      assert.equal(resolve({ csrf: false }).csrf, false);
      assert.deepEqual(resolve({ csrf: {} }).csrf, { trustedOrigins: new Set() });
      const trusted = ['https://app.example.com', 'http://localhost:5173', 'https://[::1]:8443'];
      assert.deepEqual(resolve({ csrf: { trustedOrigins: trusted } }).csrf, { trustedOrigins: new Set(trusted) });
    });

    it('refuses trusted origins that are not full origins as browsers send them', () => {
      refuses({ csrf: { trustedOrigins: ['https://app.example.com/'] } }, 'csrf.trustedOrigins[0]', /did you mean "https:\/\/app\.example\.com"/);
      refuses({ csrf: { trustedOrigins: ['https://ok.example', 'https://App.Example.com'] } }, 'csrf.trustedOrigins[1]', /did you mean "https:\/\/app\.example\.com"/);
      refuses({ csrf: { trustedOrigins: ['https://app.example.com:443'] } }, 'csrf.trustedOrigins[0]', /did you mean "https:\/\/app\.example\.com"/);
      refuses({ csrf: { trustedOrigins: ['https://app.example.com/path'] } }, 'csrf.trustedOrigins[0]');
      for (const origin of ['app.example.com', '*.example.com', 'https://*.example.com', 'ftp://files.example.com', 'null', '', 42]) {
        refuses({ csrf: { trustedOrigins: [origin as string] } }, 'csrf.trustedOrigins[0]', /must be a full origin/);
      }
      refuses({ csrf: { trustedOrigins: 'https://app.example.com' as never } }, 'csrf.trustedOrigins');
      refuses({ csrf: true as never }, 'csrf');
    });

    it('keeps issuer and audience, and refuses empty or non-string ones', () => {
      const resolved = resolve({ issuer: 'https://app.example.com', audience: 'app' });
      assert.equal(resolved.issuer, 'https://app.example.com');
      assert.equal(resolved.audience, 'app');
      refuses({ issuer: '' }, 'issuer');
      refuses({ audience: 42 as never }, 'audience');
      refuses({ issuer: 'x'.repeat(257) }, 'issuer');
    });

    it('lowercases the header name', () => {
      assert.equal(resolve({ headerName: 'X-Auth-Token' }).headerName, 'x-auth-token');
    });

    it('stretches the default absoluteTimeout to an idleTimeout longer than a day', () => {
      assert.equal(resolve({ idleTimeout: 2 * 86400 }).absoluteTimeout, 2 * 86400);
    });

    it('rounds gcBatchSize down to a whole number', () => {
      assert.equal(resolve({ gcBatchSize: 10.7 }).gcBatchSize, 10);
    });

    it('takes the embedded dialect for the SQLite types and the MySQL one for mariadb', () => {
      for (const type of ['sqljs', 'better-sqlite3', 'sqlite']) assert.equal(resolve({ database: { type } }).dialect, 'sqlite', type);
      assert.equal(resolve({ database: { type: 'mariadb', host: 'db' } }).dialect, 'mysql');
    });

    it('takes an existing DataSource as it is', () => {
      const dataSource = new DataSource({ type: 'mysql', host: 'db.internal' });
      const resolved = resolve({ database: dataSource });
      assert.equal(resolved.database, dataSource);
      assert.equal(resolved.dialect, 'mysql');
    });

    it('keeps the given values within their bounds, the bounds included', () => {
      const resolved = resolve({ idleTimeout: 1, absoluteTimeout: 400 * 86400, gcInterval: 0, lockTimeout: 0.1, maxSessionBytes: 256, clockSkew: 300, redisCommandTimeout: 60_000, cacheTtl: 1, tableName: `t${'x'.repeat(55)}`, keyPrefix: 'p'.repeat(64) });
      assert.deepEqual(
        [resolved.idleTimeout, resolved.absoluteTimeout, resolved.gcInterval, resolved.lockTimeout, resolved.maxSessionBytes, resolved.clockSkew, resolved.redisCommandTimeout, resolved.cacheTtl],
        [1, 400 * 86400, 0, 0.1, 256, 300, 60_000, 1]
      );
      assert.equal(resolved.tableName.length, 56);
    });
  });

  describe('refusals', () => {
    it('refuses missing options', () => {
      refuses(undefined, 'options', 'are required: EzSessionModule.forRoot({ secret, database })');
    });

    it('refuses a missing or empty secret', () => {
      for (const secret of [undefined, null, '']) refuses({ secret }, 'secret');
      refuses({ secret: undefined }, 'secret', 'is required: pass at least 32 random characters, e.g. from `openssl rand -base64 48`');
    });

    it('refuses a secret shorter than 32 characters', () => {
      refuses({ secret: 'a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p' }, 'secret', 'must be at least 32 characters of random material');
    });

    it('refuses a placeholder secret of few distinct characters', () => {
      refuses({ secret: 'abababababababababababababababababab' }, 'secret', 'looks like a placeholder, not random material');
    });

    it('refuses a secret that is neither a string nor a non-empty array', () => {
      refuses({ secret: [] }, 'secret', 'must be a string or a non-empty array of { id, secret }');
      refuses({ secret: 42 }, 'secret');
    });

    it('names the entry of a key ring that is refused', () => {
      refuses({ secret: [{ id: 'a', secret: SECRET }, { id: 'b', secret: 'short' }] }, 'secret[1]');
      refuses({ secret: [{ id: 'has space', secret: SECRET }] }, 'secret[0].id', 'must be a unique id of 1-32 letters, digits, "-" or "_"');
      refuses({ secret: [{ id: 'same', secret: SECRET }, { id: 'same', secret: SECRET }] }, 'secret[1].id');
    });

    it('refuses a missing database', () => {
      refuses({ database: undefined }, 'database');
    });

    it('refuses a database type it does not support, naming database.type', () => {
      refuses({ database: { type: 'postgres' } }, 'database.type');
    });

    it('refuses a MySQL url that is unset, as from an undefined environment variable', () => {
      refuses(
        { database: { type: 'mysql', url: undefined } },
        'database.url',
        'is undefined: set it (is the environment variable it comes from defined?) or give host, port, username and database'
      );
      refuses({ database: { type: 'mariadb', url: '' } }, 'database.url');
    });

    it('accepts an unset MySQL url next to a host or a socketPath, and a database without a url key', () => {
      assert.doesNotThrow(() => resolve({ database: { type: 'mysql', url: undefined, host: 'db' } }));
      assert.doesNotThrow(() => resolve({ database: { type: 'mysql', url: undefined, socketPath: '/run/mysqld.sock' } }));
      assert.doesNotThrow(() => resolve({ database: { type: 'mysql', url: 'mysql://app@db/app' } }));
      // No url key at all is TypeORM's localhost default, asked for by leaving it out.
      assert.doesNotThrow(() => resolve({ database: { type: 'mysql' } }));
    });

    it('refuses a Redis url whose scheme is not redis: or rediss:, or that is not a URL', () => {
      refuses({ redis: 'http://127.0.0.1:6420' }, 'redis', 'has the scheme "http:": use redis://host:port or rediss://host:port (TLS)');
      for (const redis of ['https://cache:6379', 'unix:///run/redis.sock', 'localhost:6379', 'tcp://cache:6379']) refuses({ redis }, 'redis');
      refuses({ redis: '127.0.0.1:6379' }, 'redis', 'is not a URL: use redis://host:port or rediss://host:port (got "127.0.0.1:6379")');
      refuses({ redis: '' }, 'redis');
      // The password never reaches the message.
      assert.throws(() => resolve({ redis: 'not a url user:hunter2@cache' }), (error: Error) => !error.message.includes('hunter2'));
    });

    it('accepts redis: and rediss: urls (any case), option objects and clients unchanged', () => {
      for (const redis of ['redis://127.0.0.1:6379', 'rediss://:secret@cache.internal:6380/2', 'REDIS://cache', 'redis://']) assert.equal(resolve({ redis }).redis, redis);
      const options = { host: 'cache', port: 6379 };
      assert.equal(resolve({ redis: options }).redis, options);
      assert.equal(resolve({}).redis, undefined);
    });

    it('refuses a table name that is not an identifier of at most 56 characters', () => {
      for (const tableName of ['1sessions', 'ez-sessions', 'ez sessions', '', `t${'x'.repeat(56)}`]) refuses({ tableName }, 'tableName');
    });

    it('refuses a header name that HTTP does not allow', () => {
      refuses({ headerName: 'x token' }, 'headerName', 'is not a valid HTTP header name: "x token"');
    });

    it('refuses a key prefix longer than 64 characters', () => {
      refuses({ keyPrefix: 'p'.repeat(65) }, 'keyPrefix', 'must be a string of at most 64 characters');
    });

    const BOUNDS: Array<[option: string, min: number, max: number]> = [
      ['idleTimeout', 1, 400 * 86400],
      ['gcInterval', 0, 86400],
      ['gcBatchSize', 1, 100_000],
      ['cacheTtl', 1, 400 * 86400],
      ['lockTimeout', 0.1, 300],
      ['maxSessionBytes', 256, 15 * 1024 * 1024],
      ['clockSkew', 0, 300],
      ['redisCommandTimeout', 10, 60_000],
      ['revocationSyncInterval', 0, 3600]
    ];
    for (const [option, min, max] of BOUNDS) {
      it(`refuses ${option} outside ${min} to ${max}, or not a finite number`, () => {
        const below = min === 0 ? -1 : min / 2;
        for (const value of [below, max + 1, Number.NaN, Infinity, '60', null]) {
          refuses({ [option]: value }, option, `must be a number from ${min} to ${max}; got ${JSON.stringify(value)}`);
        }
      });
    }

    it('refuses absoluteTimeout outside its bounds', () => {
      refuses({ absoluteTimeout: 0 }, 'absoluteTimeout', `must be a number from 1 to ${400 * 86400}; got 0`);
    });

    it('refuses an absoluteTimeout shorter than the idleTimeout', () => {
      refuses({ idleTimeout: 600, absoluteTimeout: 300 }, 'absoluteTimeout', '(300) must not be shorter than idleTimeout (600)');
    });

    it('refuses a bind.custom that is not a function', () => {
      refuses({ bind: { custom: 'x-device-id' } }, 'bind.custom', 'must be a function (request) => string');
    });

    it('refuses a userId source without a key', () => {
      refuses({ userId: {} }, 'userId', "must be { session: 'key' } or { claim: 'name' }");
      refuses({ userId: { session: '' } }, 'userId');
      refuses({ userId: { claim: 7 } }, 'userId');
    });
  });

  describe('values of the wrong type (from JavaScript, or a config file)', () => {
    it('refuses a header name that is not a string, naming headerName', () => {
      for (const headerName of [5, true, ['x-token'], {}]) refuses({ headerName }, 'headerName');
    });

    it('refuses a cookie name that is not a string, naming cookie.name', () => {
      for (const name of [5, true]) refuses({ cookie: { name } }, 'cookie.name');
    });

    it('refuses a cookie path that is not a string, naming cookie.path', () => {
      for (const path of [5, true, ['/'], {}]) refuses({ cookie: { path } }, 'cookie.path');
    });

    it('refuses a userId source that is not an object, naming userId', () => {
      for (const userId of ['userId', 5, true, null]) refuses({ userId }, 'userId', "must be { session: 'key' } or { claim: 'name' }");
    });
  });

  describe('cookie', () => {
    it('refuses a cookie name that is not an HTTP token', () => {
      refuses({ cookie: { name: 'my session' } }, 'cookie.name', 'is not a valid cookie name: "my session"');
      refuses({ cookie: { name: 'a;b' } }, 'cookie.name');
    });

    it('refuses a sameSite other than lax, strict or none', () => {
      refuses({ cookie: { sameSite: 'Lax' } }, 'cookie.sameSite', `must be 'lax', 'strict' or 'none'; got "Lax"`);
    });

    it("refuses sameSite 'none' without secure", () => {
      refuses({ cookie: { sameSite: 'none', secure: false } }, 'cookie.sameSite', "'none' requires cookie.secure: true or 'auto' (browsers drop it otherwise)");
      assert.equal(resolve({ cookie: { sameSite: 'none', secure: true } }).cookie.sameSite, 'none');
    });

    it('refuses a path that does not start with "/" or holds ";" or spaces', () => {
      for (const path of ['app', '/a;b', '/a b']) refuses({ cookie: { path } }, 'cookie.path');
    });

    it('refuses a domain that is not a domain name', () => {
      refuses({ cookie: { domain: 'example.com; Secure' } }, 'cookie.domain', 'is not a domain name: "example.com; Secure"');
      assert.equal(resolve({ cookie: { domain: '.example.com' } }).cookie.domain, '.example.com');
    });

    it('accepts a __Host- cookie that is secure, on path "/" and without a domain', () => {
      assert.deepEqual(resolve({ cookie: { name: '__Host-ezsession', secure: true } }).cookie, { name: '__Host-ezsession', secure: true, sameSite: 'lax', domain: undefined, path: '/' });
    });

    it('refuses a __Host- cookie that is not secure, has a domain or another path, whatever the case of the prefix', () => {
      const problem = "uses the __Host- prefix, which needs secure: true or 'auto', path \"/\" and no domain";
      refuses({ cookie: { name: '__Host-s', secure: false } }, 'cookie.name', problem);
      refuses({ cookie: { name: '__Host-s', secure: true, domain: 'example.com' } }, 'cookie.name', problem);
      refuses({ cookie: { name: '__Host-s', secure: true, path: '/app' } }, 'cookie.name', problem);
      refuses({ cookie: { name: '__host-s', secure: false } }, 'cookie.name', problem);
    });

    it('accepts a secure __Secure- cookie with a domain and a path', () => {
      assert.equal(resolve({ cookie: { name: '__Secure-s', secure: true, domain: 'example.com', path: '/app' } }).cookie.name, '__Secure-s');
    });

    it('refuses a __Secure- cookie that is not secure, whatever the case of the prefix', () => {
      refuses({ cookie: { name: '__Secure-s', secure: false } }, 'cookie.name', "uses the __Secure- prefix, which needs secure: true or 'auto'");
      refuses({ cookie: { name: '__SECURE-s', secure: false } }, 'cookie.name');
    });
  });

  describe('clock', () => {
    it('reads the time from the system clock when no clock is given', () => {
      const before = Date.now();
      const reading = resolve().clock.now();
      assert.ok(reading >= before && reading <= Date.now(), `${reading} is not the time now`);
    });

    it('keeps the clock it is given, which the app can move', () => {
      let time = 1_800_000_000_000;
      const clock = { now: () => time };
      const resolved = resolve({ clock });
      assert.equal(resolved.clock, clock);
      time += 60_000;
      assert.equal(resolved.clock.now(), 1_800_000_060_000);
    });

    it('refuses a clock without a now() method', () => {
      const problem = 'must be an object with a now() method returning milliseconds since the epoch, as Date.now()';
      for (const clock of [null, 1_800_000_000_000, () => 1_800_000_000_000, { now: 1_800_000_000_000 }]) refuses({ clock }, 'clock', problem);
    });

    it('refuses a clock whose now() is seconds, monotonic, microseconds or not a number', () => {
      for (const reading of [1_800_000_000, 12_345.6, 1_800_000_000_000_000, Number.NaN, '1800000000000', undefined]) {
        refuses({ clock: { now: () => reading } }, 'clock');
      }
      assert.throws(() => resolve({ clock: { now: () => 1_800_000_000 } }), /must return milliseconds since the epoch from now\(\), as Date\.now\(\) \(about \d+ now\); got 1800000000$/);
    });

    it('refuses a clock whose now() throws, with what it threw', () => {
      const clock = {
        now: () => {
          throw new Error('not started');
        }
      };
      refuses({ clock }, 'clock', 'threw from now(): not started');
    });
  });

  describe('guard', () => {
    it('takes keys, claims or both, a missing list as empty', () => {
      assert.deepEqual(resolve({ guard: { keys: ['userId'] } }).guard, { keys: ['userId'], claims: [] });
      assert.deepEqual(resolve({ guard: { claims: ['role'] } }).guard, { keys: [], claims: ['role'] });
      assert.deepEqual(resolve({ guard: { keys: ['userId'], claims: ['role'] } }).guard, { keys: ['userId'], claims: ['role'] });
    });

    it('refuses a guard that requires nothing', () => {
      refuses({ guard: {} }, 'guard', 'needs at least one of keys or claims, e.g. { keys: ["userId"] }');
      refuses({ guard: { keys: [], claims: [] } }, 'guard');
    });

    it('refuses lists that are not arrays of non-empty strings, naming the list', () => {
      refuses({ guard: { keys: 'userId' } }, 'guard.keys', 'must be an array of non-empty strings');
      refuses({ guard: { keys: ['userId', ''] } }, 'guard.keys');
      refuses({ guard: { claims: [7] } }, 'guard.claims');
    });
  });
});
