import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { AppModule } from '../../sample/app.module.js';
import { startTelemetry } from '../../sample/telemetry.js';
import { SessionClient } from '../support/session-client.js';

/** Sum of the samples of `name` whose labels include `labels`, in a Prometheus text exposition. */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, key, value]) => [key, value]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) total += Number(match[3]);
  }
  return total;
}

/**
 * The sample's /metrics (the OpenTelemetry Prometheus exporter, served by the app) and /health,
 * on the storage the environment names: `redisTrips` is what a cached read costs in Redis round
 * trips (1 with Redis, 0 with the in-process cache).
 */
export function sampleObservabilitySpec(title: string, { redisTrips, storeSystem }: { redisTrips: number; storeSystem: string }): void {
  describe(title, { timeout: 60_000 }, () => {
    let app: INestApplication;
    let baseUrl: string;

    before(async () => {
      // As main.ts does: the SDK before the app.
      startTelemetry();
      app = await NestFactory.create(AppModule, new ExpressAdapter(), { logger: ['error'] });
      await app.listen(0, '127.0.0.1');
      baseUrl = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    });
    after(async () => {
      await app?.close();
    });

    async function scrape(): Promise<string> {
      const response = await fetch(`${baseUrl}/metrics`);
      assert.equal(response.status, 200);
      return response.text();
    }

    it('/metrics moves as the requests imply: a cached read once per read, nothing for untouched requests', async () => {
      const client = new SessionClient(baseUrl, 'bearer');
      assert.equal((await client.post('/api/login', { name: 'ada' })).status, 200);
      const before = await scrape();
      assert.match(before, /# TYPE ezsession_requests_total counter/);
      for (let read = 0; read < 3; read++) assert.equal((await client.get('/api/me')).status, 200);
      const afterReads = await scrape();
      const moved = (text: string, name: string, labels?: Record<string, string>) => sampleValue(text, name, labels) - sampleValue(before, name, labels);
      assert.deepEqual(
        {
          cache: moved(afterReads, 'ezsession_requests_total', { ezsession_resolution: 'cache' }),
          requests: moved(afterReads, 'ezsession_requests_total'),
          redis: moved(afterReads, 'ezsession_storage_operations_total', { db_system: 'redis' }),
          store: moved(afterReads, 'ezsession_storage_operations_total', { db_system: storeSystem }),
          writes: moved(afterReads, 'ezsession_writes_total')
        },
        { cache: 3, requests: 3, redis: 3 * redisTrips, store: 0, writes: 0 }
      );

      // Requests nobody asks about (the scrape itself, the health check's route): no request, no round trip.
      assert.equal((await fetch(`${baseUrl}/health`)).status, 200);
      const afterUntouched = await scrape();
      for (const name of ['ezsession_requests_total', 'ezsession_storage_operations_total']) {
        assert.equal(sampleValue(afterUntouched, name), sampleValue(afterReads, name), name);
      }
    });

    it('/health reports the store and the cache up, with their latency', async () => {
      const response = await fetch(`${baseUrl}/health`);
      assert.equal(response.status, 200);
      const body = (await response.json()) as any;
      assert.equal(body.status, 'ok');
      assert.equal(body.details.sessions.status, 'up');
      assert.equal(body.details.sessions.store.status, 'up');
      assert.equal(body.details.sessions.cache.status, 'up');
      assert.equal(typeof body.details.sessions.store.latencyMs, 'number');
    });
  });
}
