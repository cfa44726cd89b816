import type { IncomingMessage, ServerResponse } from 'node:http';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

let exporter: PrometheusExporter | undefined;

/**
 * The OpenTelemetry SDK with a Prometheus reader, registered once, before the app boots (EzSession
 * takes its meter at boot). The exporter starts no server of its own: the app serves `/metrics`.
 */
export function startTelemetry(): PrometheusExporter {
  if (exporter) return exporter;
  exporter = new PrometheusExporter({ preventServerStart: true });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
  return exporter;
}

/** Answers a Prometheus scrape with what the SDK collected. */
export function serveMetrics(request: IncomingMessage, response: ServerResponse): void {
  startTelemetry().getMetricsRequestHandler(request, response);
}
