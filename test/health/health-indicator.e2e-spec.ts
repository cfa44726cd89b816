import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { EzSessionHealthIndicator } from '../../lib/index.js';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { storeOptions } from '../reliability/reliability-support.js';
import { MariaDbServer } from '../support/mariadb-server.js';
import { RedisServer } from '../support/redis-server.js';
import { pollUntil } from '../support/poll.js';
import { SessionClient } from '../support/session-client.js';

// A MariaDB and a Redis of this spec's own, stopped and started again by it.
const mariadb = new MariaDbServer();
const redisServer = new RedisServer();

@Controller()
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly sessions: EzSessionHealthIndicator
  ) {}

  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.sessions.isHealthy('sessions', { timeout: 1000 })]);
  }
}

before(async () => {
  await Promise.all([mariadb.start(), redisServer.start()]);
});
after(async () => {
  await Promise.all([mariadb.stop(), redisServer.stop()]);
});

for (const adapter of ADAPTERS) {
  describe(`EzSessionHealthIndicator under terminus (${adapter})`, () => {
    let running: RunningApp;

    before(async () => {
      running = await startFixtureApp(adapter, storeOptions(mariadb.url, redisServer.url), { imports: [TerminusModule], controllers: [HealthController] });
    });
    after(async () => {
      await running?.close();
    });
    afterEach(async () => {
      if (!redisServer.isRunning) await redisServer.restart();
      if (!mariadb.isRunning) await mariadb.restart();
      // The clients reconnect on their own: the next test starts once both answer again.
      await pollUntil('store and cache up again', async () => ((await health()).body.details?.sessions?.status === 'up' ? true : undefined), { timeoutMs: 15_000, intervalMs: 100 });
    });

    async function health(): Promise<{ status: number; body: any }> {
      const response = await fetch(`${running.url}/health`);
      return { status: response.status, body: await response.json() };
    }

    it('both answering: up, with the latency of each', async () => {
      const { status, body } = await health();
      assert.equal(status, 200);
      assert.equal(body.status, 'ok');
      const sessions = body.details.sessions;
      assert.equal(sessions.status, 'up');
      assert.deepEqual([sessions.store.status, sessions.cache.status, sessions.cache.kind], ['up', 'up', 'redis']);
      assert.ok(sessions.store.latencyMs >= 0 && sessions.cache.latencyMs >= 0);
    });

    it('Redis stopped: degraded, not down (reads fall back to MySQL), and sessions still work', async () => {
      const client = new SessionClient(running.url);
      assert.equal((await client.post('/set', { a: 1 })).status, 200);
      await redisServer.kill();
      const { status, body } = await health();
      assert.equal(status, 200);
      assert.equal(body.status, 'degraded');
      assert.equal(body.details.sessions.status, 'degraded');
      assert.equal(body.details.sessions.cache.status, 'down');
      assert.equal(body.details.sessions.store.status, 'up');
      assert.deepEqual((await client.get('/me')).body, { data: { a: 1 } });
    });

    it('MySQL stopped: down, and terminus answers 503', async () => {
      await mariadb.kill();
      const { status, body } = await health();
      assert.equal(status, 503);
      assert.equal(body.status, 'error');
      assert.equal(body.error.sessions.status, 'down');
      assert.equal(body.error.sessions.store.status, 'down');
      assert.equal(body.error.sessions.cache.status, 'up');
    });

    it('MySQL back: up again, without a restart of the app', async () => {
      await mariadb.kill();
      assert.equal((await health()).status, 503);
      await mariadb.restart();
      let last: { status: number; body: any } | undefined;
      for (let attempt = 0; attempt < 50 && last?.status !== 200; attempt++) {
        last = await health();
        if (last.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(last?.status, 200);
      assert.equal(last?.body.details.sessions.status, 'up');
    });
  });
}
