import type * as OpenTelemetryApi from '@opentelemetry/api';
import { INSTRUMENTS, LOCK_WAIT_BUCKETS, REVOCATION_DELAY_BUCKETS, tracedSessionId, type AttributeSet, type InstrumentName } from './instruments.js';
import type { HistogramName, SessionTelemetry, SpanName, TelemetrySink } from './session-telemetry.js';

type Api = typeof OpenTelemetryApi;

const SCOPE = 'nestjs-ezsession';

/**
 * `@opentelemetry/api` when the app has it (an optional peer), loaded at boot and never by a file
 * every app loads: without it EzSession keeps its counters for `metrics()` and does nothing else.
 */
export async function loadOpenTelemetry(): Promise<Api | undefined> {
  try {
    return await import('@opentelemetry/api');
  } catch (error) {
    if ((error as { code?: string })?.code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

/**
 * Connects the telemetry to the app's OpenTelemetry SDK (a no-op when it registered none): the
 * counters and gauges as observable instruments, read when a metric reader collects, so counting
 * costs a request nothing more with an SDK than without; histograms recorded with attribute sets
 * built once; spans as children of the active span (the app's HTTP instrumentation's).
 * The SDK's meter provider must be registered before the app boots (as OpenTelemetry's setup asks).
 */
export function openTelemetrySink(api: Api, telemetry: SessionTelemetry): TelemetrySink & { close(): void } {
  const meter = api.metrics.getMeter(SCOPE);
  const instruments = (bridges.get(meter) ?? bridges.set(meter, new MeterBridge(api, meter)).get(meter))!;
  instruments.live.add(telemetry);
  const histograms = instruments.histograms;

  const tracer = api.trace.getTracer(SCOPE);
  const { context, trace, SpanKind, SpanStatusCode } = api;
  return {
    record(histogram, seconds) {
      histograms.get(histogram)!.record(seconds);
    },
    span<T>(name: SpanName, sid: string, previousSid: string | undefined, attributes: AttributeSet, work: () => Promise<T>): Promise<T> {
      const parent = context.active();
      const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }, parent);
      // Not sampled, or no SDK: no attributes to build, no context to enter.
      if (!span.isRecording()) return work();
      span.setAttribute('session.id', tracedSessionId(sid));
      if (previousSid !== undefined) span.setAttribute('session.previous_id', tracedSessionId(previousSid));
      return context.with(trace.setSpan(parent, span), work).then(
        (value) => {
          span.end();
          return value;
        },
        (error: unknown) => {
          span.recordException(error as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
          span.end();
          throw error;
        }
      );
    },
    close() {
      instruments.retire(telemetry);
    }
  };
}

/**
 * The instruments of one meter, made once per process: several apps in a process (a spec's, say)
 * report through the same ones, each counter being the sum over the apps running and those that
 * have closed, so that it never goes down; gauges are those of the apps running.
 */
class MeterBridge {
  readonly live = new Set<SessionTelemetry>();
  readonly histograms = new Map<HistogramName, OpenTelemetryApi.Histogram>();
  private readonly observables = new Map<InstrumentName, OpenTelemetryApi.Observable>();
  /** What closed apps counted, by instrument and attributes. */
  private readonly retired = new Map<string, { instrument: InstrumentName; attributes: AttributeSet; value: number }>();

  constructor(api: Api, meter: OpenTelemetryApi.Meter) {
    for (const [name, { kind, unit, description }] of Object.entries(INSTRUMENTS) as Array<[InstrumentName, (typeof INSTRUMENTS)[InstrumentName]]>) {
      const options = { unit, description, valueType: api.ValueType.INT };
      if (kind === 'counter') this.observables.set(name, meter.createObservableCounter(name, options));
      else if (kind === 'gauge') this.observables.set(name, meter.createObservableGauge(name, options));
      else {
        const boundaries = name === 'ezsession.lock.wait' ? LOCK_WAIT_BUCKETS : REVOCATION_DELAY_BUCKETS;
        this.histograms.set(name as HistogramName, meter.createHistogram(name, { unit, description, advice: { explicitBucketBoundaries: boundaries } }));
      }
    }
    meter.addBatchObservableCallback((result) => this.collect(result), [...this.observables.values()]);
  }

  retire(telemetry: SessionTelemetry): void {
    if (!this.live.delete(telemetry)) return;
    telemetry.observe((instrument, value, attributes) => {
      if (INSTRUMENTS[instrument].kind !== 'counter') return;
      const key = `${instrument}\n${JSON.stringify(attributes)}`;
      const known = this.retired.get(key);
      if (known) known.value += value;
      else this.retired.set(key, { instrument, attributes, value });
    });
  }

  /** Runs when a reader collects (a scrape): the only place that allocates, never on a request. */
  private collect(result: OpenTelemetryApi.BatchObservableResult): void {
    if (this.live.size === 1 && this.retired.size === 0) {
      // The usual case: one app, reported as it counts.
      for (const telemetry of this.live) telemetry.observe((instrument, value, attributes) => result.observe(this.observables.get(instrument)!, value, attributes));
      return;
    }
    const sums = new Map<string, { instrument: InstrumentName; attributes: AttributeSet; value: number }>();
    for (const [key, { instrument, attributes, value }] of this.retired) sums.set(key, { instrument, attributes, value });
    for (const telemetry of this.live) {
      telemetry.observe((instrument, value, attributes) => {
        const key = `${instrument}\n${JSON.stringify(attributes)}`;
        const known = sums.get(key);
        if (known) known.value += value;
        else sums.set(key, { instrument, attributes, value });
      });
    }
    for (const { instrument, attributes, value } of sums.values()) result.observe(this.observables.get(instrument)!, value, attributes);
  }
}

const bridges = new WeakMap<OpenTelemetryApi.Meter, MeterBridge>();
