import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { EzSessionModule, EzSessionService, type EzSessionModuleOptions } from '../../lib/index.js';
import { FixtureController } from '../fixtures/fixture.controller.js';
import { startFixtureApp, TEST_SECRET } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { SessionClient } from '../support/session-client.js';
import { freePort } from '../support/free-port.js';
import { testEnv } from '../support/test-env.js';

async function bootError(options: Partial<EzSessionModuleOptions>): Promise<Error> {
  @Module({ imports: [EzSessionModule.forRoot(options as EzSessionModuleOptions)] })
  class AppModule {}
  try {
    const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
    await app.close();
  } catch (error) {
    return error as Error;
  }
  throw new Error('the app booted');
}

describe('module options are checked at boot', () => {
  const database = { type: 'sqljs' } as const;
  const refusals: Array<[string, Partial<EzSessionModuleOptions>, RegExp]> = [
    ['a missing secret', { database }, /option "secret" is required/],
    ['a secret under 32 characters', { secret: 'short', database }, /"secret" must be at least 32 characters/],
    ['a placeholder secret', { secret: 'a'.repeat(40), database }, /"secret" looks like a placeholder/],
    ['a missing database', { secret: TEST_SECRET }, /"database" is required/],
    ['an unsupported database driver', { secret: TEST_SECRET, database: { type: 'postgres' } as never }, /"database.type" "postgres" is not supported/],
    ['an unsafe table name', { secret: TEST_SECRET, database, tableName: 'sessions; DROP TABLE users' }, /"tableName" must be letters, digits/],
    ['a lock timeout out of range', { secret: TEST_SECRET, database, lockTimeout: -1 }, /"lockTimeout" must be a number from 0.1 to 300/],
    ['a clock skew over five minutes', { secret: TEST_SECRET, database, clockSkew: 3600 }, /"clockSkew" must be a number from 0 to 300/],
    ['a clock that reads seconds', { secret: TEST_SECRET, database, clock: { now: () => Math.floor(Date.now() / 1000) } }, /"clock" must return milliseconds since the epoch/],
    ['SameSite=None without Secure', { secret: TEST_SECRET, database, cookie: { sameSite: 'none', secure: false } }, /"cookie.sameSite" 'none' requires cookie.secure/],
    ['a Redis url with an http: scheme (ioredis would read it as a socket path)', { secret: TEST_SECRET, database, redis: 'http://127.0.0.1:6420' }, /^EzSession option "redis" has the scheme "http:"/],
    ['a Redis url that is not a URL', { secret: TEST_SECRET, database, redis: '127.0.0.1:6420' }, /^EzSession option "redis" is not a URL/],
    ['a __Host- cookie without Secure', { secret: TEST_SECRET, database, cookie: { name: '__Host-session', secure: false } }, /__Host- prefix/]
  ];
  for (const [what, options, message] of refusals) {
    it(`refuses ${what} with a message naming the option`, async () => {
      assert.match((await bootError(options)).message, message);
    });
  }
});

describe('a database that cannot be used stops the boot with an error naming EzSession and the option', () => {
  const mysql = () => new URL(testEnv().mysqlUrl);

  it('an unset url (an environment variable that is not defined) is refused before any connection', async () => {
    const error = await bootError({ secret: TEST_SECRET, database: { type: 'mysql', url: process.env.EZ_NO_SUCH_VARIABLE } });
    assert.match(error.message, /^EzSession option "database.url" is undefined: set it \(is the environment variable it comes from defined\?\)/);
  });

  it('a server that does not answer', async () => {
    const port = await freePort();
    const error = await bootError({ secret: TEST_SECRET, database: { type: 'mysql', host: '127.0.0.1', port, username: 'root' } });
    assert.equal(error.message, `EzSession option "database" names a MySQL server that cannot be reached at 127.0.0.1:${port} (ECONNREFUSED): is it running, and are host and port right?`);
  });

  it('a refused login', async () => {
    const url = mysql();
    url.username = 'no_such_user';
    url.password = 'wrong';
    const error = await bootError({ secret: TEST_SECRET, database: { type: 'mysql', url: url.toString() } });
    assert.match(error.message, new RegExp(`^EzSession option "database" was refused by the MySQL server at 127\\.0\\.0\\.1:${url.port} \\(ER_ACCESS_DENIED_ERROR\\): check the username, password`));
    assert.doesNotMatch(error.message, /wrong/, 'the password is never shown');
  });

  it('a database that does not exist', async () => {
    const url = mysql();
    url.pathname = '/no_such_database';
    const error = await bootError({ secret: TEST_SECRET, database: { type: 'mysql', url: url.toString() } });
    assert.match(error.message, /^EzSession option "database" names a database that does not exist on 127\.0\.0\.1:\d+ \(ER_BAD_DB_ERROR\)/);
  });
});

describe('forRootAsync', () => {
  const apps: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const app of apps) await app.close();
  });

  async function roundTrip(imports: unknown[]): Promise<void> {
    @Module({ imports: imports as never[], controllers: [FixtureController] })
    class AppModule {}
    const app = await NestFactory.create(AppModule, { logger: ['error'] });
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    const client = new SessionClient((await app.getUrl()).replace('[::1]', '127.0.0.1'));
    await client.post('/set', { via: 'async' });
    assert.deepEqual((await client.get('/me')).body, { data: { via: 'async' } });
  }

  it('takes a factory with injected dependencies', async () => {
    @Injectable()
    class Settings {
      readonly options = realStoreOptions();
    }
    @Module({ providers: [Settings], exports: [Settings] })
    class SettingsModule {}
    await roundTrip([EzSessionModule.forRootAsync({ imports: [SettingsModule], inject: [Settings], useFactory: (settings: Settings) => settings.options })]);
  });

  it('takes an options class', async () => {
    @Injectable()
    class SessionConfig {
      createEzSessionOptions(): EzSessionModuleOptions {
        return realStoreOptions();
      }
    }
    await roundTrip([EzSessionModule.forRootAsync({ useClass: SessionConfig })]);
  });

  it('takes an existing options provider', async () => {
    @Injectable()
    class SharedConfig {
      createEzSessionOptions(): EzSessionModuleOptions {
        return realStoreOptions();
      }
    }
    @Module({ providers: [SharedConfig], exports: [SharedConfig] })
    class ConfigModule {}
    await roundTrip([EzSessionModule.forRootAsync({ imports: [ConfigModule], useExisting: SharedConfig })]);
  });
});

describe('shutdown closes only what EzSession opened', () => {
  it('leaves a DataSource and a Redis client passed in by the app open', async () => {
    const dataSource = new DataSource({ type: 'mysql', url: testEnv().mysqlUrl });
    await dataSource.initialize();
    const redis = new Redis(testEnv().redisUrl);
    const running = await startFixtureApp('express', realStoreOptions({ database: dataSource, redis }));
    const client = new SessionClient(running.url);
    await client.post('/set', { shared: true });
    await running.close();
    assert.equal(dataSource.isInitialized, true);
    assert.equal(redis.status, 'ready');
    assert.deepEqual(await dataSource.query('SELECT 1 AS one'), [{ one: 1 }]);
    await dataSource.destroy();
    redis.disconnect();
  });

  it('closes the DataSource and Redis client it created', async () => {
    const running = await startFixtureApp('express', realStoreOptions());
    const service = running.app.get(EzSessionService);
    assert.equal(typeof (await service.countActive()), 'number');
    await running.close();
    await assert.rejects(service.countActive());
  });
});

describe('EzSessionService', () => {
  it('reads a stored session and counts active sessions', async () => {
    const running = await startFixtureApp('express', realStoreOptions());
    try {
      const service = running.app.get(EzSessionService);
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 5 });
      const sid = JSON.parse(Buffer.from(client.token!.split('.')[1], 'base64url').toString()).sid;
      assert.deepEqual(await service.read(sid), { userId: 5 });
      assert.equal(await service.countActive(), 1);
      await client.post('/clear');
      assert.equal(await service.read(sid), undefined);
      assert.equal(await service.countActive(), 0);
    } finally {
      await running.close();
    }
  });
});
