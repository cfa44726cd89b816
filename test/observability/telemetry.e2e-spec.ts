import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { context, metrics, trace, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, DataPointType, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Redis } from 'ioredis';
import { EzSessionService } from '../../lib/index.js';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { pollUntil } from '../support/poll.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { StorageCounters } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';

/** A real SDK reader that collects when asked (the Prometheus exporter is one of these too). */
class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

// The SDK is registered before any app boots, as OpenTelemetry's setup asks.
const reader = new CollectingReader();
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
const spans = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const tracer = trace.getTracer('test-http');

/** Sum of the points of `name` whose attributes include `match`. */
function valueOf(collected: ResourceMetrics, name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const scope of collected.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints) {
        if (!Object.entries(match).every(([key, value]) => point.attributes[key] === value)) continue;
        total += metric.dataPointType === DataPointType.HISTOGRAM ? (point.value as { count: number }).count : (point.value as number);
      }
    }
  }
  return total;
}

async function collect(): Promise<ResourceMetrics> {
  const { resourceMetrics, errors } = await reader.collect();
  assert.deepEqual(errors, []);
  return resourceMetrics;
}

const REQUESTS = 'ezsession.requests';
const OPERATIONS = 'ezsession.storage.operations';

for (const adapter of ADAPTERS) {
  describe(`OpenTelemetry metrics and spans (${adapter})`, () => {
    let running: RunningApp;
    let redis: Redis;
    const options = realStoreOptions();
    /** The span the app's HTTP instrumentation would have made, per request path. */
    const requestSpans = new Map<string, Span>();

    before(async () => {
      running = await startFixtureApp(adapter, options, {
        configure(app) {
          // What an HTTP instrumentation does: a span per request, active while the request is handled.
          const enter = (request: IncomingMessage, response: ServerResponse, next: () => void) => {
            const span = tracer.startSpan(`HTTP ${request.method} ${request.url}`);
            requestSpans.set(String(request.url), span);
            const active = trace.setSpan(context.active(), span);
            context.bind(active, request);
            context.bind(active, response);
            response.once('finish', () => span.end());
            context.with(active, next);
          };
          if (adapter === 'express') app.use(enter);
          else (app.getHttpAdapter().getInstance() as any).addHook('onRequest', (request: any, reply: any, done: () => void) => enter(request.raw, reply.raw, done));
        }
      });
      redis = new Redis(testEnv().redisUrl);
    });
    after(async () => {
      await running?.close();
      redis?.disconnect();
    });
    beforeEach(() => spans.reset());

    async function storedClient(): Promise<SessionClient> {
      const client = new SessionClient(running.url);
      await client.post('/set', { cart: ['apple'] });
      assert.equal(claimsOf(client.token).stored, true);
      return client;
    }

    /** What `work` added to each instrument (and attribute set) asked for. */
    async function delta(work: () => Promise<unknown>, ...asks: Array<[string, Record<string, string>?]>): Promise<number[]> {
      const before = await collect();
      await work();
      const afterwards = await collect();
      return asks.map(([name, match]) => valueOf(afterwards, name, match) - valueOf(before, name, match));
    }

    it('a cached read is one request resolved from the cache and one Redis round trip, and no SQL', async () => {
      const client = await storedClient();
      const [cache, requests, redisTrips, sql] = await delta(
        () => client.get('/me'),
        [REQUESTS, { 'ezsession.resolution': 'cache' }],
        [REQUESTS],
        [OPERATIONS, { 'db.system': 'redis' }],
        [OPERATIONS, { 'db.system': 'mariadb' }]
      );
      assert.deepEqual({ cache, requests, redisTrips, sql }, { cache: 1, requests: 1, redisTrips: 1, sql: 0 });
    });

    it('a request nobody asks about counts nothing, and makes no span', async () => {
      const client = await storedClient();
      spans.reset();
      const [requests, trips] = await delta(() => client.get('/plain'), [REQUESTS], [OPERATIONS]);
      assert.deepEqual({ requests, trips }, { requests: 0, trips: 0 });
      assert.deepEqual(spans.getFinishedSpans().filter((span) => span.name.startsWith('ezsession.')), []);
    });

    it('a stored session whose handler reads only the claims is one claims request, with no I/O and no span', async () => {
      const client = await storedClient();
      spans.reset();
      const before = await collect();
      await client.get('/claims');
      // Counted when the response closes (the handler might still have read the data until then).
      const afterwards = await pollUntil(
        'the claims-only request to be counted',
        async () => {
          const now = await collect();
          return valueOf(now, REQUESTS, { 'ezsession.resolution': 'claims' }) > valueOf(before, REQUESTS, { 'ezsession.resolution': 'claims' }) ? now : undefined;
        },
        { timeoutMs: 2000, intervalMs: 10 }
      );
      assert.equal(valueOf(afterwards, REQUESTS) - valueOf(before, REQUESTS), 1);
      assert.equal(valueOf(afterwards, REQUESTS, { 'ezsession.resolution': 'claims' }) - valueOf(before, REQUESTS, { 'ezsession.resolution': 'claims' }), 1);
      assert.equal(valueOf(afterwards, OPERATIONS) - valueOf(before, OPERATIONS), 0);
      assert.deepEqual(spans.getFinishedSpans().filter((span) => span.name.startsWith('ezsession.')), []);
    });

    it('a miss reads the row: one store request, one SELECT, the refill through its lease', async () => {
      const client = await storedClient();
      await redis.del(options.keyPrefix + claimsOf(client.token).sid);
      const [store, select, redisTrips] = await delta(
        () => client.get('/me'),
        [REQUESTS, { 'ezsession.resolution': 'store' }],
        [OPERATIONS, { 'db.system': 'mariadb', 'db.operation.name': 'SELECT' }],
        [OPERATIONS, { 'db.system': 'redis' }]
      );
      // The cache read, the lease and the refill.
      assert.deepEqual({ store, select, redisTrips }, { store: 1, select: 1, redisTrips: 3 });
    });

    it('refused tokens are counted by reason; no token is none', async () => {
      const client = await storedClient();
      const [tampered, expired] = [`${client.token!.slice(0, -2)}AA`, 'not-a-jwt'];
      const [signature, malformed, none] = await delta(
        async () => {
          await new SessionClient(running.url, 'cookie', tampered).get('/me');
          await new SessionClient(running.url, 'cookie', expired).get('/me');
          await new SessionClient(running.url).get('/me');
        },
        [REQUESTS, { 'ezsession.resolution': 'refused', 'ezsession.refusal': 'signature' }],
        [REQUESTS, { 'ezsession.resolution': 'refused', 'ezsession.refusal': 'malformed' }],
        [REQUESTS, { 'ezsession.resolution': 'none' }]
      );
      assert.deepEqual({ signature, malformed, none }, { signature: 1, malformed: 1, none: 1 });
    });

    it('a first write is one written write, one INSERT and one cache write', async () => {
      const client = new SessionClient(running.url);
      const [written, insert, redisTrips] = await delta(
        () => client.post('/set', { a: 1 }),
        ['ezsession.writes', { 'ezsession.outcome': 'written' }],
        [OPERATIONS, { 'db.system': 'mariadb', 'db.operation.name': 'INSERT' }],
        [OPERATIONS, { 'db.system': 'redis', 'db.operation.name': 'EVALSHA' }]
      );
      assert.deepEqual({ written, insert, redisTrips }, { written: 1, insert: 1, redisTrips: 1 });
    });

    it('metrics() moves by what the instruments export', async () => {
      // The instruments are the process's (this spec's apps add up); metrics() is this app's: compare what one request adds.
      const service = running.app.get(EzSessionService);
      const plainOf = () => {
        const plain = service.metrics();
        const redis = plain.storageOperations.redis;
        return [plain.requestsCache, plain.writes, plain.writeRetries, redis?.MULTI ?? 0, redis?.EVALSHA ?? 0, plain.storageOperations.mariadb?.UPDATE ?? 0];
      };
      const client = await storedClient();
      const plainBefore = plainOf();
      const exported = await delta(
        async () => {
          await client.get('/me');
          await client.post('/set', { again: true });
        },
        [REQUESTS, { 'ezsession.resolution': 'cache' }],
        ['ezsession.writes', { 'ezsession.outcome': 'written' }],
        ['ezsession.writes', { 'ezsession.outcome': 'retried' }],
        [OPERATIONS, { 'db.system': 'redis', 'db.operation.name': 'MULTI' }],
        [OPERATIONS, { 'db.system': 'redis', 'db.operation.name': 'EVALSHA' }],
        [OPERATIONS, { 'db.system': 'mariadb', 'db.operation.name': 'UPDATE' }]
      );
      const moved = plainOf().map((value, index) => value - plainBefore[index]);
      assert.deepEqual(moved, exported);
      // Two cached reads (the GET, and the POST's read before its write: a MULTI…EXEC round trip each),
      // one write: its UPDATE and its cache write (an EVALSHA).
      assert.deepEqual(moved, [2, 1, 0, 2, 1, 1]);
    });

    it('the round trips counted agree with what the servers saw', async () => {
      const client = await storedClient();
      await redis.del(options.keyPrefix + claimsOf(client.token).sid);
      const counters = await StorageCounters.connect(testEnv().mysqlUrl, testEnv().redisUrl);
      try {
        let redisTrips = 0;
        let sql = 0;
        // Through the SDK: this spec's second app reports through the instruments the first one made (one process, one meter).
        const usage = await counters.measure(async () => {
          [redisTrips, sql] = await delta(
            async () => assert.equal((await client.post('/set', { more: true })).status, 200),
            [OPERATIONS, { 'db.system': 'redis' }],
            [OPERATIONS, { 'db.system': 'mariadb' }]
          );
        });
        // The read is one transaction, MULTI / INFO / MGET / EXEC: four commands in one round trip.
        const commands = Object.values(usage.redis.sent).reduce((sum, count) => sum + count, 0);
        assert.equal(usage.redis.sent.exec, 1);
        assert.equal(redisTrips, commands - 3 * usage.redis.sent.exec);
        assert.equal(sql, usage.mysql.queries);
      } finally {
        await counters.close();
      }
    });

    it('a stored read is one ezsession.load span, a child of the request span, with a shortened session.id', async () => {
      const client = await storedClient();
      spans.reset();
      await client.get('/me');
      const loads = spans.getFinishedSpans().filter((span) => span.name === 'ezsession.load');
      assert.equal(loads.length, 1);
      const [load] = loads;
      const sid = claimsOf(client.token).sid as string;
      assert.equal(load.attributes['session.id'], sid.slice(0, 18));
      assert.equal(load.attributes['db.system'], 'redis');
      assert.equal(parentOf(load), requestSpans.get('/me')!.spanContext().spanId);
      assert.ok(!JSON.stringify(spans.getFinishedSpans().map((span) => span.attributes)).includes(client.token!));
    });

    it('a write is an ezsession.write span under the request span', async () => {
      const client = await storedClient();
      spans.reset();
      await client.post('/set', { b: 2 });
      const writes = spans.getFinishedSpans().filter((span) => span.name === 'ezsession.write');
      assert.equal(writes.length, 1);
      assert.equal(writes[0].attributes['db.system'], 'mariadb');
      assert.equal(parentOf(writes[0]), requestSpans.get('/set')!.spanContext().spanId);
    });

    it('a regeneration is an ezsession.revoke span with session.previous_id, and its lock an ezsession.lock span inside it', async () => {
      const client = await storedClient();
      const previous = claimsOf(client.token).sid as string;
      spans.reset();
      const [lockWaits, sent] = await delta(() => client.post('/life/regenerate'), ['ezsession.lock.wait'], ['ezsession.revocations', { 'ezsession.direction': 'sent' }]);
      const next = claimsOf(client.token).sid as string;
      assert.notEqual(next, previous);
      const [revoke] = spans.getFinishedSpans().filter((span) => span.name === 'ezsession.revoke');
      assert.equal(revoke.attributes['session.id'], next.slice(0, 18));
      assert.equal(revoke.attributes['session.previous_id'], previous.slice(0, 18));
      assert.equal(parentOf(revoke), requestSpans.get('/life/regenerate')!.spanContext().spanId);
      const [lock] = spans.getFinishedSpans().filter((span) => span.name === 'ezsession.lock');
      assert.equal(parentOf(lock), revoke.spanContext().spanId);
      assert.deepEqual({ lockWaits, sent }, { lockWaits: 1, sent: 1 });
    });

    it('the active-sessions gauge comes from countActive() and GC passes, and GC runs are counted', async () => {
      const service = running.app.get(EzSessionService);
      await (await storedClient()).post('/life/destroy');
      await storedClient();
      const active = await service.countActive();
      const [runs] = await delta(() => service.gc(), ['ezsession.gc.runs']);
      assert.equal(runs, 1);
      const collected = await collect();
      assert.ok(valueOf(collected, 'ezsession.sessions.active') >= active);
      assert.ok(valueOf(collected, 'ezsession.revocations.held') >= 1);
    });
  });
}

function parentOf(span: ReadableSpan): string | undefined {
  return (span as ReadableSpan & { parentSpanContext?: { spanId: string } }).parentSpanContext?.spanId;
}
