import { COUNTERS, operationOf, type AttributeSet, type CounterKey, type DbSystem, type InstrumentName } from './instruments.js';

/** One round-trip counter: a `db.system` and an operation, its attributes built once. */
export interface RoundTripCounter {
  value: number;
  readonly system: DbSystem;
  readonly operation: string;
  readonly attributes: AttributeSet;
}

export type SpanName = 'ezsession.load' | 'ezsession.write' | 'ezsession.lock' | 'ezsession.revoke';
export type HistogramName = 'ezsession.lock.wait' | 'ezsession.revocation.delay';

/**
 * Where telemetry goes beyond the counters: histograms and spans. The default does nothing; the
 * OpenTelemetry one (open-telemetry.sink.ts) is installed at boot when `@opentelemetry/api` is there.
 */
export interface TelemetrySink {
  record(histogram: HistogramName, seconds: number): void;
  /** Runs `work` inside a span (a child of the active one); `attributes` are the span's fixed ones. */
  span<T>(name: SpanName, sid: string, previousSid: string | undefined, attributes: AttributeSet, work: () => Promise<T>): Promise<T>;
  close?(): void;
}

const NO_SINK: TelemetrySink = {
  record: () => undefined,
  span: (_name, _sid, _previous, _attributes, work) => work()
};

/** What `EzSessionService.metrics()` returns: every counter since boot, and the gauges. */
export type EzSessionMetrics = Record<CounterKey, number> & {
  /** Round trips by `db.system` and operation, e.g. `{ redis: { EVALSHA: 12 }, mariadb: { SELECT: 1 } }`. */
  storageOperations: Partial<Record<DbSystem, Record<string, number>>>;
  /** From the last GC pass or countActive(); `null` until one ran. */
  activeSessions: number | null;
  revocationsHeld: number;
};

/**
 * The observer every part of EzSession reports to. Counting is a field increment on plain numbers
 * whether or not anything exports them: `metrics()` reads them, and the OpenTelemetry bridge
 * observes the same numbers when a reader collects (observable counters), so a request pays the
 * same with an SDK installed as without. Only histograms and spans go through the sink.
 */
export class SessionTelemetry {
  readonly counts: Record<CounterKey, number>;
  /** By statement (or command) text: the repository and the cache pass their constant strings. */
  private readonly roundTripsByStatement = new Map<string, RoundTripCounter>();
  private readonly roundTrips: RoundTripCounter[] = [];
  private activeSessions: number | undefined;
  private heldRevocations: () => number = () => 0;
  /** Whether a reader collected the gauges since the last GC pass (then the pass also counts the live sessions). */
  private gaugesWanted = false;
  sink: TelemetrySink = NO_SINK;
  /** The durable store's `db.system`, once the repository has learnt which server it talks to. */
  storeSystem: DbSystem = 'mysql';

  constructor() {
    this.counts = Object.fromEntries(Object.keys(COUNTERS).map((key) => [key, 0])) as Record<CounterKey, number>;
  }

  count(key: CounterKey, by = 1): void {
    this.counts[key] += by;
  }

  /** One round trip: `statement` is the SQL text or the Redis command, constant per call site. */
  roundTrip(system: DbSystem, statement: string): void {
    let counter = this.roundTripsByStatement.get(statement);
    if (counter === undefined) counter = this.newRoundTrip(system, statement);
    counter.value++;
  }

  record(histogram: HistogramName, seconds: number): void {
    this.sink.record(histogram, seconds);
  }

  span<T>(name: SpanName, sid: string, work: () => Promise<T>, previousSid?: string): Promise<T> {
    if (this.sink === NO_SINK) return work();
    return this.sink.span(name, sid, previousSid, name === 'ezsession.load' ? this.loadAttributes : this.storeAttributes, work);
  }

  /** The cache's `db.system` on load spans (`redis`, or the store's when the cache is in-process). */
  cacheSystem: DbSystem | undefined;
  private get loadAttributes(): AttributeSet {
    return (this.loadAttributeSet ??= { 'db.system': this.cacheSystem ?? this.storeSystem });
  }
  private get storeAttributes(): AttributeSet {
    return (this.storeAttributeSet ??= { 'db.system': this.storeSystem });
  }
  private loadAttributeSet: AttributeSet | undefined;
  private storeAttributeSet: AttributeSet | undefined;

  /** At shutdown: a reader collecting later must not see this app's numbers. */
  close(): void {
    this.sink.close?.();
    this.sink = NO_SINK;
  }

  activeSessionsCounted(count: number): void {
    this.activeSessions = count;
  }

  /** Whether a GC pass should also count the live sessions: only when something reads the gauge. */
  takeGaugeDemand(): boolean {
    const wanted = this.gaugesWanted;
    this.gaugesWanted = false;
    return wanted;
  }

  trackRevocationsHeld(read: () => number): void {
    this.heldRevocations = read;
  }

  /** For the OpenTelemetry bridge: every value to report, with its instrument and attributes. */
  observe(report: (instrument: InstrumentName, value: number, attributes: AttributeSet) => void): void {
    this.gaugesWanted = true;
    for (const key in COUNTERS) {
      const [instrument, attributes] = COUNTERS[key as CounterKey];
      report(instrument, this.counts[key as CounterKey], attributes);
    }
    for (const counter of this.roundTrips) report('ezsession.storage.operations', counter.value, counter.attributes);
    if (this.activeSessions !== undefined) report('ezsession.sessions.active', this.activeSessions, NO_ATTRIBUTES);
    report('ezsession.revocations.held', this.heldRevocations(), NO_ATTRIBUTES);
  }

  snapshot(): EzSessionMetrics {
    const storageOperations: EzSessionMetrics['storageOperations'] = {};
    for (const { system, operation, value } of this.roundTrips) {
      const bySystem = (storageOperations[system] ??= {});
      bySystem[operation] = (bySystem[operation] ?? 0) + value;
    }
    return { ...this.counts, storageOperations, activeSessions: this.activeSessions ?? null, revocationsHeld: this.heldRevocations() };
  }

  private newRoundTrip(system: DbSystem, statement: string): RoundTripCounter {
    const operation = operationOf(statement);
    // Statements of one operation share a counter (and so an attribute set): SELECT by id and SELECT by user are both SELECT.
    let counter = this.roundTrips.find((known) => known.system === system && known.operation === operation);
    if (!counter) {
      counter = { value: 0, system, operation, attributes: { 'db.system': system, 'db.operation.name': operation } };
      this.roundTrips.push(counter);
    }
    // Statements are constant strings; a bound keeps a caller that builds them from growing the map.
    if (this.roundTripsByStatement.size < 1000) this.roundTripsByStatement.set(statement, counter);
    return counter;
  }
}

const NO_ATTRIBUTES: AttributeSet = {};
