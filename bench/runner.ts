import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { createTableStatements } from '../lib/storage/session-table.sql.js';
import { StorageCounters, type ServerUsage } from '../test/support/storage-counters.js';
import { loadFor, prepareSessions, probe, readAll, requestFor, requestsFor, sessionIdOf, storedCount, type ContentionLoad, type Headers, type LoadPlan } from './credentials.js';
import { APPS, SCENARIOS, type AppDef, type AppId, type ScenarioDef, type ScenarioId } from './definitions.js';
import { runLoad, type LoadResult } from './load.js';
import { cpuSeconds, loadAverage, machineBusySeconds, rssMiB, startApp, type AppProcess } from './processes.js';
import { summarizeProfile, type ProfileSummary } from './profile.js';

/** Other processes' CPU (% of one core) during a window above which the run is repeated once. */
export const NOISY_OTHER_CPU = 40;

/** The sessions table EzSession creates with its default options. */
export const EZ_TABLE = 'ez_sessions';

export interface BenchSettings {
  connections: number;
  warmupSeconds: number;
  seconds: number;
  /** Times each (app, scenario) is measured, each time in a fresh process; the best round is reported. */
  rounds: number;
  /** Sessions taken in turn by the write and locked-inc scenarios. */
  pool: number;
  /** Requests of the sample after each measured window that counts the Redis commands the app sent (MONITOR on). */
  sample: number;
  /** CPUs the app and the load generator are pinned to; undefined when not pinned. */
  appCpu?: number;
  loadCpu?: number;
}

export interface BenchContext {
  root: string;
  mysqlUrl: string;
  redisUrl: string;
  /** PIDs of the throwaway MariaDB and Redis, for their CPU use. */
  serverPids: { mysql?: number; redis?: number };
  settings: BenchSettings;
  log(message: string): void;
}

export interface RunResult {
  app: AppId;
  scenario: ScenarioId;
  /** Responses received in the measured window (any status). */
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  mean: number;
  /**
   * Storage commands per completed request in the measured window, read from the servers: Redis
   * commands executed (INFO commandstats, so the GET and SET a script runs count besides its
   * EVALSHA) and MariaDB statements (Questions, Com_*).
   */
  redisPerRequest: number;
  mysqlPerRequest: number;
  redisByCommand: Record<string, number>;
  mysqlByCommand: Record<string, number>;
  /**
   * Redis commands the app sent per request (the round trips; a script's own calls left out),
   * from MONITOR during a short sample of the same requests right after the window: MONITOR slows
   * Redis down, so it never runs during the window itself.
   */
  redisSent?: { requests: number; perRequest: number; byCommand: Record<string, number> };
  /** App CPU time per completed request, in microseconds: barely moved by other processes taking CPU away. */
  appCpuUsPerRequest?: number;
  /**
   * The Redis server's own CPU time per completed request, in microseconds: INFO cpu's
   * used_cpu_user + used_cpu_sys (the redis-server process, all threads) over the measured window,
   * less what Redis used over the same time when idle (measured just before the window).
   */
  redisCpuUsPerRequest?: number;
  /** CPU use in the measured window, in % of one core. */
  cpu: { app?: number; mysql?: number; redis?: number; load: number; other?: number };
  /** The machine's 1-minute load average at the end of the run. */
  loadAverage?: number;
  rssMiB?: number;
  /** EzSession's writes, and the retries among them (a statement that lost to a concurrent write and went again), in the measured window: EzSessionService.metrics(). */
  writes?: { writes: number; retries: number };
  /** Contention scenarios: what the session held after the window. */
  contention?: ContentionResult;
  /** Locked-inc scenarios: increments stored during the measured run (sum of `n` after minus before) vs 2xx increments answered in it. */
  increments?: { stored: number; answered: number };
  /** Rows in the sessions table during the run (scale runs). */
  tableRows?: number;
  /** What the check before the warm-up found wrong (the run then measured something else). */
  problem?: string;
  /** req/s of every round (the result is the best of them). */
  roundsRps?: number[];
  /** 2 when the first attempt was disturbed by other processes and the run was repeated. */
  attempts?: number;
  flagged: boolean;
}

/**
 * After a contention window: the keys it wrote (one per connection, or the one shared key) and
 * those the session did not hold with the right value (ContentionLoad), read from the store itself
 * (EzSession's MySQL row, express-session's Redis entry) and as the app reads it (GET /all: for
 * EzSession, through its cache).
 */
export interface ContentionResult {
  mode: 'keys' | 'key';
  keys: number;
  lostInStore: string[];
  lostInRead: string[];
  /** Size of the session's data in the store afterwards, as JSON: the contended session carries every connection's key. */
  storedBytes: number;
}

export interface ProfileResult {
  app: AppId;
  scenario: ScenarioId;
  run: RunResult;
  summary: ProfileSummary;
}

export interface ScaleResult {
  rows: number;
  fillSeconds: number;
  runs: RunResult[];
}

/** Latency of a stretch of load. */
export interface LatencySummary {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  mean: number;
  non2xx: number;
  errors: number;
}

export interface GcUnderLoadResult {
  scenario: ScenarioId;
  expiredRows: number;
  fillSeconds: number;
  /** The same load before the GC pass, in the same process. */
  idle: LatencySummary;
  /** Responses that arrived while the GC pass ran. */
  duringGc: LatencySummary;
  gc: { deleted: number; ms: number };
  /** Rows left in the table afterwards (the live sessions the load used). */
  rowsLeft: number;
}

export interface SoakResult {
  app: AppId;
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  before: { rssMiB: number; heapUsedMiB: number };
  after: { rssMiB: number; heapUsedMiB: number };
  /** Readings after each fifth of the requests. */
  checkpoints?: Array<{ requests: number; rssMiB: number; heapUsedMiB: number }>;
  rssGrowthPercent: number;
  heapGrowthPercent: number;
}

interface RunOptions {
  /** Flush Redis and drop the sessions table first (default true). */
  reset?: boolean;
  nodeArgs?: string[];
  /** Measured seconds, when not the configured ones (profiles use half). */
  seconds?: number;
  /** Called with the app's process after the measured run, before it is stopped. */
  onMeasured?: (window: { fromUs: number; toUs: number }) => void;
}

/** The bench's own clients on the throwaway servers: resets, checks, filler rows. */
export class Bench {
  /** Sequence number of the next filler row. */
  private fillerNext = 1;
  /** Re-runs left for runs disturbed by other processes. */
  private retriesLeft = 8;
  /** Milliseconds left to wait for a quiet machine. */
  private quietBudgetMs = 150_000;

  private constructor(
    readonly context: BenchContext,
    private readonly counters: StorageCounters,
    private readonly mysql: Connection,
    private readonly redis: Redis
  ) {}

  static async open(context: BenchContext): Promise<Bench> {
    // Snapshots only: a MONITOR client would make Redis copy every command of the measured window to it.
    const counters = await StorageCounters.connect(context.mysqlUrl, context.redisUrl, { monitor: false });
    const mysql = await createConnection(context.mysqlUrl);
    const redis = new Redis(context.redisUrl);
    return new Bench(context, counters, mysql, redis);
  }

  async close(): Promise<void> {
    await this.counters.close();
    await this.mysql.end();
    await this.redis.quit();
  }

  async serverVersions(): Promise<{ mariadb: string; redis: string }> {
    const [[{ version }]] = await this.mysql.query<RowDataPacket[]>('SELECT VERSION() AS version');
    const info = await this.redis.info('server');
    return { mariadb: String(version), redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown' };
  }

  async resetStores(): Promise<void> {
    await this.redis.flushall();
    await this.mysql.query(`DROP TABLE IF EXISTS \`${EZ_TABLE}\``);
  }

  /** One measured run of one scenario on one app, in a fresh app process. */
  async run(appId: AppId, scenarioId: ScenarioId, options: RunOptions = {}): Promise<RunResult> {
    const app = APPS[appId];
    const scenario = SCENARIOS[scenarioId];
    const { settings } = this.context;
    if (options.reset !== false) await this.resetStores();
    const proc = await this.start(app, options.nodeArgs);
    try {
      const sessions = await prepareSessions(app, scenario, proc.url, settings.pool);
      const problem = await probe(app, scenario, proc.url, sessions);
      if (problem) this.context.log(`!! ${problem}`);
      const warmup = await runLoad({ url: proc.url, connections: settings.connections, duration: settings.warmupSeconds, ...loadFor(scenario, sessions, 'w') });
      // The measured run is a fixed number of requests, about `seconds` long at the warm-up's rate:
      // autocannon then waits for every response, so nothing is in flight at either end of the window
      // and the storage counts divide exactly.
      const amount = Math.max(settings.connections * 20, Math.round(warmup.rate * (options.seconds ?? settings.seconds)));
      await this.settle();
      const storedBefore = scenario.counts ? await storedCount(proc.url, sessions) : 0;
      const measured = loadFor(scenario, sessions, 'm');
      // From the app's control server: no storage traffic.
      const metricsBefore = app.metrics ? await writeMetrics(proc) : undefined;

      // Redis's own idle work (serverCron, expiry cycles) over half a second without traffic, taken off the
      // window's CPU: at a few hundred requests a second it would otherwise be much of what a request seems to cost.
      const idleFrom = await this.redisCpuSeconds();
      const idleStarted = performance.now();
      await sleep(500);
      const idleTo = await this.redisCpuSeconds();
      const redisIdlePerSecond = idleFrom !== undefined && idleTo !== undefined ? (idleTo - idleFrom) / ((performance.now() - idleStarted) / 1000) : 0;
      const redisCpuBefore = await this.redisCpuSeconds();
      const redisCpuFrom = performance.now();
      const before = await this.counters.snapshot();
      const cpuBefore = this.cpuNow(proc);
      const fromUs = Number(process.hrtime.bigint() / 1000n);
      const load = await runLoad({ url: proc.url, connections: settings.connections, amount, ...measured });
      const toUs = fromUs + Math.round(load.elapsedSeconds * 1e6);
      const cpuAfter = this.cpuNow(proc);
      const rss = rssMiB(proc.pid);
      // Anything an app does after its last response (none should) still lands in the window.
      await sleep(150);
      const after = await this.counters.snapshot();
      const redisCpuAfter = await this.redisCpuSeconds();
      const redisCpuTo = performance.now();
      const usage = StorageCounters.usage(before, after);
      const metricsAfter = app.metrics ? await writeMetrics(proc) : undefined;
      options.onMeasured?.({ fromUs, toUs });

      const increments = scenario.counts
        ? { stored: (await storedCount(proc.url, sessions)) - storedBefore, answered: load.ok }
        : undefined;
      const tableRows = options.reset === false ? await this.tableRows() : undefined;
      const result = toRunResult(app, scenario, load, usage, cpuBefore, cpuAfter, rss, increments, tableRows);
      if (redisCpuBefore !== undefined && redisCpuAfter !== undefined && load.completed > 0) {
        const idle = redisIdlePerSecond * ((redisCpuTo - redisCpuFrom) / 1000);
        result.redisCpuUsPerRequest = (Math.max(0, redisCpuAfter - redisCpuBefore - idle) * 1e6) / load.completed;
      }
      if (metricsBefore && metricsAfter) {
        result.writes = { writes: metricsAfter.writes - metricsBefore.writes, retries: metricsAfter.writeRetries - metricsBefore.writeRetries };
      }
      if (measured.contention) result.contention = await this.checkContention(app, sessions[0], proc.url, measured.contention);
      result.redisSent = await this.sampleSent(proc.url, loadFor(scenario, sessions, 's'));
      await this.settle();
      if (problem) Object.assign(result, { problem, flagged: true });
      return result;
    } finally {
      await proc.stop();
    }
  }

  /**
   * `run()`, on a machine other sessions share: first waits (at most 20 s) for the other processes
   * to go quiet, and runs once more when they took more than 40% of a core during the window,
   * keeping the quieter of the two.
   */
  async runQuietly(appId: AppId, scenarioId: ScenarioId, options: RunOptions = {}): Promise<RunResult> {
    await this.waitForQuiet();
    const first = await this.run(appId, scenarioId, options);
    if ((first.cpu.other ?? 0) <= NOISY_OTHER_CPU || this.retriesLeft <= 0) return first;
    this.retriesLeft--;
    this.context.log(`    (other processes took ${Math.round(first.cpu.other!)}% of a core during that run: running it again)`);
    await this.waitForQuiet();
    const second = await this.run(appId, scenarioId, options);
    const pick = (second.cpu.other ?? 0) < (first.cpu.other ?? 0) ? second : first;
    return { ...pick, attempts: 2 };
  }

  /**
   * Waits until the machine's CPUs are nearly idle (under 25% of one core busy over half a second), at
   * most 20 s a time and 150 s per bench, so a busy machine slows the bench down only so much.
   */
  private async waitForQuiet(): Promise<void> {
    const started = performance.now();
    try {
      while (performance.now() - started < 20_000 && this.quietBudgetMs - (performance.now() - started) > 0) {
        const before = machineBusySeconds();
        await sleep(500);
        const after = machineBusySeconds();
        if (before === undefined || after === undefined || after - before < 0.125) return;
      }
    } finally {
      this.quietBudgetMs -= performance.now() - started;
    }
  }

  /** The run again with the app under `node --cpu-prof`; the summary covers the measured window only. */
  async profile(appId: AppId, scenarioId: ScenarioId): Promise<ProfileResult> {
    const dir = join(this.context.root, 'bench', 'profiles');
    mkdirSync(dir, { recursive: true });
    const name = `${appId}.${scenarioId}.cpuprofile`;
    rmSync(join(dir, name), { force: true });
    let window: { fromUs: number; toUs: number } | undefined;
    await this.waitForQuiet();
    const run = await this.run(appId, scenarioId, {
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}`],
      // Half the measured time is thousands of samples already, and keeps the default bench short.
      seconds: Math.max(4, this.context.settings.seconds / 2),
      onMeasured: (w) => (window = w)
    });
    if (!readdirSync(dir).includes(name)) throw new Error(`no profile written to ${join(dir, name)}`);
    return { app: appId, scenario: scenarioId, run, summary: summarizeProfile(join(dir, name), this.context.root, window) };
  }

  /** stored-read and write on EzSession with the sessions table holding each of `sizes` rows. */
  async scale(sizes: number[], scenarios: ScenarioId[] = ['stored-read', 'write']): Promise<ScaleResult[]> {
    await this.resetStores();
    this.fillerNext = 1;
    for (const statement of createTableStatements('mysql', EZ_TABLE)) await this.mysql.query(statement);
    const results: ScaleResult[] = [];
    for (const rows of [...sizes].sort((a, b) => a - b)) {
      const started = performance.now();
      await this.fillTo(rows);
      const fillSeconds = (performance.now() - started) / 1000;
      this.context.log(`  ${rows.toLocaleString('en-US')} rows (filled in ${fillSeconds.toFixed(1)} s)`);
      const runs: RunResult[] = [];
      for (const scenario of scenarios) {
        // Between sizes only Redis is flushed: the table keeps its rows.
        await this.redis.flushall();
        const run = await this.runQuietly('ezsession', scenario, { reset: false });
        this.context.log(`    ${describeRun(run)}`);
        runs.push(run);
      }
      results.push({ rows, fillSeconds, runs });
    }
    return results;
  }

  /**
   * A GC pass over `expiredRows` expired rows while EzSession serves `scenario` load: latency of the
   * same load just before (idle) vs during the pass, in one app process.
   */
  async gcUnderLoad(expiredRows: number, scenarios: ScenarioId[] = ['stored-read', 'write']): Promise<GcUnderLoadResult[]> {
    const app = APPS.ezsession;
    const { settings } = this.context;
    const results: GcUnderLoadResult[] = [];
    for (const scenarioId of scenarios) {
      const scenario = SCENARIOS[scenarioId];
      await this.resetStores();
      this.fillerNext = 1;
      for (const statement of createTableStatements('mysql', EZ_TABLE)) await this.mysql.query(statement);
      const started = performance.now();
      await this.fillTo(expiredRows, { expired: true });
      const fillSeconds = (performance.now() - started) / 1000;
      await this.waitForQuiet();
      const proc = await this.start(app);
      try {
        const sessions = await prepareSessions(app, scenario, proc.url, settings.pool);
        const problem = await probe(app, scenario, proc.url, sessions);
        if (problem) throw new Error(`gc-under-load ${scenarioId}: ${problem}`);
        const requests = requestsFor(scenario, sessions);
        const load = { url: proc.url, connections: settings.connections, requests };
        await runLoad({ ...load, duration: settings.warmupSeconds });
        await this.settle();
        const idle = await runLoad({ ...load, duration: Math.max(5, settings.seconds) });

        // The pass starts half a second into the load (connections open, steady state); latencies count from then.
        let gcStarting!: () => void;
        const measureFrom = new Promise<void>((resolve) => (gcStarting = resolve));
        const gcDone = (async () => {
          await sleep(500);
          gcStarting();
          const response = await fetch(`${proc.controlUrl}/gc`);
          if (!response.ok) throw new Error(`GC pass failed: ${response.status} ${await response.text()}`);
          return (await response.json()) as { deleted: number; ms: number };
        })();
        const duringLoad = await runLoad({ ...load, duration: 3600, measureFrom, stopWhen: gcDone });
        const gc = await gcDone;
        const result: GcUnderLoadResult = {
          scenario: scenarioId,
          expiredRows,
          fillSeconds,
          idle: latencyOf(idle, idle.elapsedSeconds),
          duringGc: latencyOf(duringLoad, gc.ms / 1000),
          gc,
          rowsLeft: await this.tableRows()
        };
        this.context.log(
          `  ${scenarioId}: GC deleted ${gc.deleted.toLocaleString('en-US')} rows in ${(gc.ms / 1000).toFixed(1)} s (${result.rowsLeft} left); ` +
            `p99 idle ${idle.p99.toFixed(2)} ms, during GC ${duringLoad.p99.toFixed(2)} ms (${(duringLoad.p99 / idle.p99).toFixed(2)}×); ` +
            `p50 ${idle.p50.toFixed(2)} -> ${duringLoad.p50.toFixed(2)} ms; ${duringLoad.non2xx + idle.non2xx} non-2xx, ${duringLoad.errors + idle.errors} errors`
        );
        results.push(result);
      } finally {
        await proc.stop();
      }
    }
    return results;
  }

  /** Resident memory after warm-up vs after `amount` requests of mixed scenarios (with a full GC before each reading). */
  async soak(appId: AppId, amount: number): Promise<SoakResult> {
    const app = APPS[appId];
    const { settings } = this.context;
    await this.resetStores();
    await this.waitForQuiet();
    const proc = await this.start(app, ['--expose-gc']);
    try {
      const mix: ScenarioId[] = ['untouched', 'claims-read', 'stored-read', 'write', 'locked-inc', 'first-visit'];
      const requests = [];
      for (const id of mix) {
        const scenario = SCENARIOS[id];
        requests.push(requestFor(scenario, await prepareSessions(app, scenario, proc.url, settings.pool)));
      }
      await runLoad({ url: proc.url, connections: settings.connections, duration: settings.warmupSeconds, requests });
      const before = await memoryOf(proc);
      // Five legs with a reading after each: a leak grows leg after leg, a warming heap levels off.
      const legs = 5;
      const checkpoints: SoakResult['checkpoints'] = [];
      const totals = { completed: 0, ok: 0, non2xx: 0, errors: 0 };
      for (let leg = 1; leg <= legs; leg++) {
        const legAmount = Math.round((amount * leg) / legs) - Math.round((amount * (leg - 1)) / legs);
        const load = await runLoad({ url: proc.url, connections: settings.connections, amount: legAmount, requests });
        totals.completed += load.completed;
        totals.ok += load.ok;
        totals.non2xx += load.non2xx;
        totals.errors += load.errors;
        await this.settle();
        checkpoints.push({ requests: totals.completed, ...(await memoryOf(proc)) });
      }
      const after = checkpoints[checkpoints.length - 1];
      return {
        app: appId,
        requests: totals.completed,
        ok: totals.ok,
        non2xx: totals.non2xx,
        errors: totals.errors,
        before,
        after: { rssMiB: after.rssMiB, heapUsedMiB: after.heapUsedMiB },
        checkpoints,
        rssGrowthPercent: (100 * (after.rssMiB - before.rssMiB)) / before.rssMiB,
        heapGrowthPercent: (100 * (after.heapUsedMiB - before.heapUsedMiB)) / before.heapUsedMiB
      };
    } finally {
      await proc.stop();
    }
  }

  /**
   * The Redis commands the app sends per request, counted with MONITOR (a counter instance of its
   * own, connected only for this) over a few hundred more requests of the same kind.
   */
  private async sampleSent(url: string, plan: LoadPlan): Promise<RunResult['redisSent']> {
    const { connections, sample } = this.context.settings;
    const sampler = await StorageCounters.connect(this.context.mysqlUrl, this.context.redisUrl);
    try {
      const { result: load, redis } = await sampler.measure(async () => {
        const load = await runLoad({ url, connections, amount: Math.max(connections, sample), ...plan });
        // As for the window: anything sent after the last response still counts.
        await sleep(150);
        return load;
      });
      const n = load.completed || 1;
      const byCommand = Object.fromEntries(Object.entries(redis.sent).map(([name, count]) => [name, count / n]));
      return { requests: load.completed, perRequest: Object.values(redis.sent).reduce((sum, count) => sum + count, 0) / n, byCommand };
    } finally {
      await sampler.close();
    }
  }

  /** The contention window's keys against the session in its store and as the app reads it. */
  private async checkContention(app: AppDef, session: Headers, url: string, load: ContentionLoad): Promise<ContentionResult> {
    const stored = await this.storedSession(app, session);
    const inStore = load.lostIn(stored);
    const inRead = load.lostIn(await readAll(url, session));
    return { mode: load.mode, keys: inStore.keys, lostInStore: inStore.lost, lostInRead: inRead.lost, storedBytes: JSON.stringify(stored ?? {}).length };
  }

  /** A session's data read from the store itself, around the app: EzSession's MySQL row, express-session's Redis entry. */
  private async storedSession(app: AppDef, session: Headers): Promise<Record<string, unknown> | undefined> {
    const sid = sessionIdOf(app, session);
    if (app.id === 'ezsession') {
      const [rows] = await this.mysql.query<RowDataPacket[]>(`SELECT data FROM \`${EZ_TABLE}\` WHERE sid = ?`, [sid]);
      return rows[0] ? (JSON.parse(String(rows[0].data)) as Record<string, unknown>) : undefined;
    }
    const stored = await this.redis.get(`sess:${sid}`);
    return stored ? (JSON.parse(stored) as Record<string, unknown>) : undefined;
  }

  /** Waits (at most 5 s) until Redis and MySQL see no traffic for 100 ms: the warm-up's last requests have landed. */
  private async settle(): Promise<void> {
    const deadline = performance.now() + 5_000;
    let previous = await this.counters.snapshot();
    while (performance.now() < deadline) {
      await sleep(100);
      const next = await this.counters.snapshot();
      const usage = StorageCounters.usage(previous, next);
      if (usage.redis.total === 0 && usage.mysql.queries === 0) return;
      previous = next;
    }
  }

  private start(app: AppDef, nodeArgs: string[] = []): Promise<AppProcess> {
    return startApp(app, {
      root: this.context.root,
      env: { BENCH_MYSQL_URL: this.context.mysqlUrl, BENCH_REDIS_URL: this.context.redisUrl },
      cpu: this.context.settings.appCpu,
      nodeArgs
    });
  }

  private cpuNow(proc: AppProcess): CpuReading {
    const { mysql, redis } = this.context.serverPids;
    return {
      at: performance.now(),
      app: cpuSeconds(proc.pid),
      mysql: cpuSeconds(mysql),
      redis: cpuSeconds(redis),
      load: process.cpuUsage(),
      machine: machineBusySeconds(),
      loadAverage: loadAverage()
    };
  }

  /**
   * CPU seconds the Redis server has used (INFO cpu, microsecond resolution, where /proc's clock
   * ticks are 10 ms). Read on the bench's own connection, outside the counters' snapshots, so it
   * is not one of the commands counted; its own cost (one INFO) is noise against thousands of requests.
   */
  private async redisCpuSeconds(): Promise<number | undefined> {
    try {
      const info = await this.redis.info('cpu');
      const user = /^used_cpu_user:([\d.]+)/m.exec(info)?.[1];
      const sys = /^used_cpu_sys:([\d.]+)/m.exec(info)?.[1];
      return user === undefined || sys === undefined ? undefined : Number(user) + Number(sys);
    } catch {
      return undefined;
    }
  }

  private async tableRows(): Promise<number> {
    const [[{ n }]] = await this.mysql.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${EZ_TABLE}\``);
    return Number(n);
  }

  /**
   * Adds filler rows until the table holds `rows`: live (or expired) sessions with random-looking UUID ids (MD5
   * of a sequence number), a small JSON `data`, `flash` '{}' and millisecond timestamps, as
   * EzSession writes them. Multi-row INSERT ... SELECT from MariaDB's sequence engine, 50k rows a
   * statement; plain multi-row INSERTs where the sequence engine is missing.
   */
  private async fillTo(rows: number, { expired = false } = {}): Promise<void> {
    // Expired rows: created three hours ago, expired an hour ago (GC's work); otherwise live for two more hours.
    const now = expired ? Date.now() - 3 * 3600 * 1000 : Date.now();
    const expires = expired ? Date.now() - 3600 * 1000 : now + 2 * 3600 * 1000;
    const data = '{"userId":1234,"cart":["apple","pear"],"theme":"dark"}';
    let have = await this.tableRows();
    const hasSequence = await this.mysql
      .query('SELECT seq FROM seq_1_to_1')
      .then(() => true)
      .catch(() => false);
    const uuidOf = (h: string) =>
      `CONCAT(SUBSTR(${h},1,8),'-',SUBSTR(${h},9,4),'-4',SUBSTR(${h},14,3),'-a',SUBSTR(${h},18,3),'-',SUBSTR(${h},21,12))`;
    let next = this.fillerNext;
    while (have < rows) {
      const batch = Math.min(50_000, rows - have);
      if (hasSequence) {
        await this.mysql.query(
          `INSERT INTO \`${EZ_TABLE}\` (sid, data, flash, user_id, created_at, updated_at, expires_at)
           SELECT ${uuidOf(`MD5(CONCAT('filler', seq))`)}, ?, '{}', NULL, ?, ?, ? FROM seq_${next}_to_${next + batch - 1}`,
          [data, now, now, expires]
        );
      } else {
        const values: unknown[] = [];
        const placeholders: string[] = [];
        for (let i = next; i < next + batch; i++) {
          const h = md5(`filler${i}`);
          values.push(`${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`, data, now, now, expires);
          placeholders.push("(?, ?, '{}', NULL, ?, ?, ?)");
        }
        await this.mysql.query(
          `INSERT INTO \`${EZ_TABLE}\` (sid, data, flash, user_id, created_at, updated_at, expires_at) VALUES ${placeholders.join(',')}`,
          values
        );
      }
      next += batch;
      have += batch;
    }
    this.fillerNext = next;
  }
}

interface CpuReading {
  at: number;
  app?: number;
  mysql?: number;
  redis?: number;
  load: NodeJS.CpuUsage;
  machine?: number;
  loadAverage?: number;
}

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

async function memoryOf(proc: AppProcess): Promise<{ rssMiB: number; heapUsedMiB: number }> {
  const response = await fetch(`${proc.controlUrl}/memory`);
  const usage = (await response.json()) as { heapUsed: number; rss: number };
  // VmRSS from /proc, read right after the GC the control endpoint ran.
  const rss = rssMiB(proc.pid) ?? usage.rss / 1048576;
  return { rssMiB: rss, heapUsedMiB: usage.heapUsed / 1048576 };
}

async function writeMetrics(proc: AppProcess): Promise<{ writes: number; writeRetries: number }> {
  const response = await fetch(`${proc.controlUrl}/metrics`);
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as { writes: number; writeRetries: number };
}

function latencyOf(load: LoadResult, seconds: number): LatencySummary {
  const requests = load.measured;
  return { requests, seconds, rps: requests / seconds, p50: load.p50, p99: load.p99, mean: load.mean, non2xx: load.non2xx, errors: load.errors };
}

function percentOf(before: number | undefined, after: number | undefined, seconds: number): number | undefined {
  if (before === undefined || after === undefined) return undefined;
  return (100 * (after - before)) / seconds;
}

function toRunResult(
  app: AppDef,
  scenario: ScenarioDef,
  load: LoadResult,
  usage: ServerUsage,
  cpuBefore: CpuReading,
  cpuAfter: CpuReading,
  rss: number | undefined,
  increments: RunResult['increments'],
  tableRows: number | undefined
): RunResult {
  const n = load.completed || 1;
  // The load's own window: autocannon reports back up to a second after the last response, idle time that would dilute the percentages.
  const seconds = load.elapsedSeconds;
  const perRequest = (counts: Record<string, number>) =>
    Object.fromEntries(Object.entries(counts).map(([name, count]) => [name, count / n]));
  const loadCpu = process.cpuUsage(cpuBefore.load);
  const loadCpuPercent = (100 * (loadCpu.user + loadCpu.system)) / 1e6 / seconds;
  const ours = [cpuBefore.app, cpuAfter.app, cpuBefore.mysql, cpuAfter.mysql, cpuBefore.redis, cpuAfter.redis];
  const other =
    cpuBefore.machine !== undefined && cpuAfter.machine !== undefined && ours.every((v) => v !== undefined)
      ? Math.max(
          0,
          (100 * (cpuAfter.machine - cpuBefore.machine - (cpuAfter.app! - cpuBefore.app!) - (cpuAfter.mysql! - cpuBefore.mysql!) - (cpuAfter.redis! - cpuBefore.redis!))) / seconds -
            loadCpuPercent
        )
      : undefined;
  return {
    app: app.id,
    scenario: scenario.id,
    requests: load.completed,
    ok: load.ok,
    non2xx: load.non2xx,
    errors: load.errors,
    timeouts: load.timeouts,
    statusCodes: load.statusCodes,
    seconds: load.elapsedSeconds,
    rps: load.completed / load.elapsedSeconds,
    p50: load.p50,
    p99: load.p99,
    mean: load.mean,
    appCpuUsPerRequest:
      cpuBefore.app !== undefined && cpuAfter.app !== undefined && load.completed > 0 ? ((cpuAfter.app - cpuBefore.app) * 1e6) / load.completed : undefined,
    redisPerRequest: usage.redis.total / n,
    mysqlPerRequest: usage.mysql.queries / n,
    redisByCommand: perRequest(usage.redis.byCommand),
    mysqlByCommand: perRequest(usage.mysql.byCommand),
    cpu: {
      app: percentOf(cpuBefore.app, cpuAfter.app, seconds),
      mysql: percentOf(cpuBefore.mysql, cpuAfter.mysql, seconds),
      redis: percentOf(cpuBefore.redis, cpuAfter.redis, seconds),
      load: loadCpuPercent,
      other
    },
    loadAverage: cpuAfter.loadAverage,
    rssMiB: rss,
    increments,
    tableRows,
    flagged: load.non2xx > 0 || load.errors > 0 || load.completed === 0
  };
}

export function describeRun(run: RunResult): string {
  const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const flags = run.problem ? `  !! ${run.problem}` : run.flagged ? `  !! non-2xx ${run.non2xx}, errors ${run.errors} ${JSON.stringify(run.statusCodes)}` : '';
  const inc = run.increments ? `  increments stored ${run.increments.stored}/${run.increments.answered}` : '';
  const writes = run.writes?.writes ? `  retries/write ${f(run.writes.retries / Math.max(1, run.writes.writes), 3)}` : '';
  const contention = run.contention
    ? `  lost keys ${run.contention.lostInStore.length}/${run.contention.keys} in the store, ${run.contention.lostInRead.length}/${run.contention.keys} read`
    : '';
  const cpu = `cpu app ${f(run.cpu.app ?? NaN, 0)}% mysql ${f(run.cpu.mysql ?? NaN, 0)}% redis ${f(run.cpu.redis ?? NaN, 0)}% load ${f(run.cpu.load, 0)}% other ${f(run.cpu.other ?? NaN, 0)}%`;
  return (
    `${run.app.padEnd(16)} ${run.scenario.padEnd(15)} ${f(run.rps, 0).padStart(7)} req/s  p50 ${f(run.p50)} ms  p99 ${f(run.p99)} ms  ` +
    `app cpu ${f(run.appCpuUsPerRequest ?? NaN, 0)} µs/req  redis cpu ${f(run.redisCpuUsPerRequest ?? NaN, 1)} µs/req  ` +
    `redis ${f(run.redisPerRequest)}/req (sent ${f(run.redisSent?.perRequest ?? NaN)})  mysql ${f(run.mysqlPerRequest)}/req  ${cpu}${inc}${writes}${contention}${flags}`
  );
}

export type { Headers };
