import autocannon, { type AutocannonRequest } from 'autocannon';

export interface LoadOptions {
  url: string;
  connections: number;
  /** Seconds; or `amount` requests in all. */
  duration?: number;
  amount?: number;
  requests: AutocannonRequest[];
}

export interface LoadResult {
  /** Responses received (any status). */
  completed: number;
  ok: number;
  non2xx: number;
  /** Connection errors and timeouts (autocannon's `errors` includes `timeouts`). */
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  elapsedSeconds: number;
  /** Responses per second between the first response and the last (connection setup left out). */
  rate: number;
  /** Latency of 2xx responses in ms, computed here from every response time (autocannon's own percentiles are whole milliseconds). */
  p50: number;
  p99: number;
  mean: number;
}

/** One autocannon run, with exact latency percentiles from every response. */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  let latencies = new Float64Array(1 << 16);
  let okCount = 0;
  const statusCodes: Record<string, number> = {};
  let completed = 0;
  let firstAt = 0;
  let lastAt = 0;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.duration }),
        timeout: 10,
        requests: options.requests
      },
      (error, result) => {
        if (error) {
          reject(error);
          return;
        }
        const elapsedSeconds = (performance.now() - started) / 1000;
        const sorted = latencies.subarray(0, okCount).sort();
        let sum = 0;
        for (let i = 0; i < sorted.length; i++) sum += sorted[i];
        resolve({
          completed,
          ok: okCount,
          non2xx: completed - okCount,
          errors: result.errors,
          timeouts: result.timeouts,
          statusCodes,
          elapsedSeconds,
          rate: completed > 1 && lastAt > firstAt ? ((completed - 1) * 1000) / (lastAt - firstAt) : completed / elapsedSeconds,
          p50: percentile(sorted, 0.5),
          p99: percentile(sorted, 0.99),
          mean: sorted.length ? sum / sorted.length : Number.NaN
        });
      }
    );
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      lastAt = performance.now();
      if (completed++ === 0) firstAt = lastAt;
      statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
      if (statusCode >= 200 && statusCode < 300) {
        if (okCount === latencies.length) {
          const grown = new Float64Array(latencies.length * 2);
          grown.set(latencies);
          latencies = grown;
        }
        latencies[okCount++] = responseTime;
      }
    });
  });
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
