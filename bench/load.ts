import autocannon, { type AutocannonRequest, type Client } from 'autocannon';

export interface LoadOptions {
  url: string;
  connections: number;
  /** Seconds; or `amount` requests in all. */
  duration?: number;
  amount?: number;
  requests: AutocannonRequest[];
  /** Per-connection requests (the contention scenarios give each connection its own key). */
  setupClient?: (client: Client) => void;
  /** Latencies count only from when this settles (everything still counts towards `completed`). */
  measureFrom?: Promise<unknown>;
  /** Stops the run early when this settles. */
  stopWhen?: Promise<unknown>;
}

export interface LoadResult {
  /** Responses received (any status). */
  completed: number;
  ok: number;
  /** 2xx responses in the latency figures (all of them, unless `measureFrom` was given). */
  measured: number;
  non2xx: number;
  /** Connection errors and timeouts (autocannon's `errors` includes `timeouts`). */
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  elapsedSeconds: number;
  /** Responses per second over the second half of a timed run (else between the first response and the last). */
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
  let okTotal = 0;
  const statusCodes: Record<string, number> = {};
  let completed = 0;
  let firstAt = 0;
  let lastAt = 0;
  const started = performance.now();
  // Timed runs: the rate over their second half, once the JIT has warmed up.
  const lateFrom = options.duration !== undefined ? started + (options.duration * 1000) / 2 : Number.POSITIVE_INFINITY;
  let lateCount = 0;
  let measuring = options.measureFrom === undefined;
  const measure = () => (measuring = true);
  options.measureFrom?.then(measure, measure);
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.duration }),
        timeout: 10,
        // autocannon notices that a run is over (its time is up, or every connection got its last
        // answer) only on its next sample tick: at the default 1 s, every run would idle up to a
        // second at its end. Its per-tick samples are not used here (rates and latencies are
        // computed from the responses), so the tick only sets how soon the run returns.
        sampleInt: 100,
        requests: options.requests,
        ...(options.setupClient ? { setupClient: options.setupClient } : {})
      },
      (error, result) => {
        if (error) {
          reject(error);
          return;
        }
        // From the start to the last response: autocannon only notices it is done on its next
        // sample tick, so the time to its callback would round every run up to whole ticks.
        const elapsedSeconds = ((completed > 0 ? lastAt : performance.now()) - started) / 1000;
        const sorted = latencies.subarray(0, okCount).sort();
        let sum = 0;
        for (let i = 0; i < sorted.length; i++) sum += sorted[i];
        resolve({
          completed,
          ok: okTotal,
          measured: okCount,
          non2xx: completed - okTotal,
          errors: result.errors,
          timeouts: result.timeouts,
          statusCodes,
          elapsedSeconds,
          rate:
            lateCount > 1 && lastAt > lateFrom
              ? ((completed - lateCount) * 1000) / (lastAt - lateFrom)
              : completed > 1 && lastAt > firstAt
                ? ((completed - 1) * 1000) / (lastAt - firstAt)
                : completed / elapsedSeconds,
          p50: percentile(sorted, 0.5),
          p99: percentile(sorted, 0.99),
          mean: sorted.length ? sum / sorted.length : Number.NaN
        });
      }
    );
    const stop = () => instance.stop();
    options.stopWhen?.then(stop, stop);
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      lastAt = performance.now();
      if (completed++ === 0) firstAt = lastAt;
      if (lateCount === 0 && lastAt >= lateFrom) lateCount = completed;
      statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
      const ok = statusCode >= 200 && statusCode < 300;
      if (ok) okTotal++;
      if (ok && measuring) {
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
