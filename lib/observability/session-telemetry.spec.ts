import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as api from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { COUNTERS, INSTRUMENTS, operationOf, tracedSessionId } from './instruments.js';
import { openTelemetrySink } from './open-telemetry.sink.js';
import { SessionTelemetry } from './session-telemetry.js';

class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

function pointsOf(collected: ResourceMetrics, name: string): Array<{ attributes: Record<string, unknown>; value: number }> {
  return collected.scopeMetrics.flatMap((scope) =>
    scope.metrics.filter((metric) => metric.descriptor.name === name).flatMap((metric) => metric.dataPoints.map((point) => ({ attributes: point.attributes, value: point.value as number })))
  );
}

describe('telemetry', () => {
  it('names the operation of a statement or command as db.operation.name does', () => {
    assert.equal(operationOf('SELECT data FROM t WHERE sid = ?'), 'SELECT');
    assert.equal(operationOf('SELECT GET_LOCK(?, ?) AS locked'), 'GET_LOCK');
    assert.equal(operationOf('SELECT RELEASE_LOCK(?) AS released'), 'RELEASE_LOCK');
    assert.equal(operationOf('update t set x = 1'), 'UPDATE');
    assert.equal(operationOf('EVALSHA'), 'EVALSHA');
  });

  it('shortens a session id to its first three groups for spans', () => {
    assert.equal(tracedSessionId('1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d'), '1a2b3c4d-5e6f-4a7b');
  });

  it('every counter names an instrument of the table, and the four public names are there with their kinds and units', () => {
    for (const [instrument] of Object.values(COUNTERS)) assert.ok(instrument in INSTRUMENTS, instrument);
    assert.deepEqual(
      (['ezsession.requests', 'ezsession.storage.operations', 'ezsession.writes', 'ezsession.lock.wait'] as const).map((name) => [INSTRUMENTS[name].kind, INSTRUMENTS[name].unit]),
      [['counter', '{request}'], ['counter', '{operation}'], ['counter', '{write}'], ['histogram', 's']]
    );
  });

  it('snapshot: the counters, round trips by system and operation, and the gauges', () => {
    const telemetry = new SessionTelemetry();
    telemetry.count('writes');
    telemetry.count('writes', 2);
    telemetry.count('writeRetries');
    telemetry.roundTrip('mariadb', 'SELECT data FROM t WHERE sid = ?');
    telemetry.roundTrip('mariadb', 'SELECT sid FROM t WHERE user_id = ?');
    telemetry.roundTrip('redis', 'EVALSHA');
    telemetry.trackRevocationsHeld(() => 4);
    const snapshot = telemetry.snapshot();
    assert.equal(snapshot.writes, 3);
    assert.equal(snapshot.writeRetries, 1);
    assert.equal(snapshot.requestsCache, 0);
    assert.deepEqual(snapshot.storageOperations, { mariadb: { SELECT: 2 }, redis: { EVALSHA: 1 } });
    assert.equal(snapshot.activeSessions, null);
    assert.equal(snapshot.revocationsHeld, 4);
    telemetry.activeSessionsCounted(7);
    assert.equal(telemetry.snapshot().activeSessions, 7);
  });

  it('through a real SDK: counters observed as counted; several apps of one process add up and never go down when one closes', async () => {
    const reader = new CollectingReader();
    const provider = new MeterProvider({ readers: [reader] });
    // A meter provider of this test's own, handed in as the global API would hand it.
    const scoped = { ...api, metrics: { ...api.metrics, getMeter: (name: string) => provider.getMeter(name) } } as typeof api;
    const first = new SessionTelemetry();
    const firstSink = openTelemetrySink(scoped, first);
    first.count('requestsCache', 5);
    const cacheRequests = async () => pointsOf((await reader.collect()).resourceMetrics, 'ezsession.requests').find((point) => point.attributes['ezsession.resolution'] === 'cache')?.value;
    assert.equal(await cacheRequests(), 5);

    const second = new SessionTelemetry();
    const secondSink = openTelemetrySink(scoped, second);
    second.count('requestsCache', 2);
    assert.equal(await cacheRequests(), 7);
    firstSink.close();
    second.count('requestsCache');
    assert.equal(await cacheRequests(), 8);
    secondSink.close();
    await provider.shutdown();
  });

  it('without a sink, a span is the work itself', async () => {
    const telemetry = new SessionTelemetry();
    assert.equal(await telemetry.span('ezsession.load', 'sid', async () => 42), 42);
  });
});
