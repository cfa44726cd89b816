import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';

/**
 * What an app that exports metrics runs: the SDK's MeterProvider with a reader that collects every
 * second (more often than a Prometheus scrape usually comes), into an in-memory exporter so that no
 * network send is measured as the app's CPU.
 */
export async function installOpenTelemetry(): Promise<void> {
  const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 1000 });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
}
