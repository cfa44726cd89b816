import type { AppId, ScenarioId } from './definitions.js';
import type { RevocationResult } from './revocation.js';
import type { RunResult, ScaleResult } from './runner.js';

export interface TargetCheck {
  /** Undefined: informational line, not a target. */
  pass?: boolean;
  /** The measurement the target needs was not part of this bench (e.g. --scale): neither PASS nor MISS. */
  skipped?: boolean;
  text: string;
  /** The EzSession scenario to profile when this target misses, and what to profile next to it. */
  profile?: { scenario: ScenarioId; against: Array<{ app: AppId; scenario: ScenarioId }> };
}

/**
 * Per-request counts are exact (nothing is in flight at the window's ends); this absorbs float rounding
 * and the one background statement per `revocationSyncInterval` (a SELECT every 5 s, ~0.00003 a request here).
 */
export const COUNT_TOLERANCE = 0.001;

/** MySQL statements a write retry adds: the re-read of the row, and the statement tried again. */
const STATEMENTS_PER_RETRY = 2;

export function findRun(runs: RunResult[], app: AppId, scenario: ScenarioId): RunResult | undefined {
  return runs.find((run) => run.app === app && run.scenario === scenario);
}

const rps = (run: RunResult) => Math.round(run.rps).toLocaleString('en-US');
const x = (ratio: number) => `${ratio.toFixed(2)}×`;
const n = (value: number) => value.toFixed(2);
const us = (value: number | undefined) => (value === undefined ? '–' : `${Math.round(value)}`);
/** App CPU per request of `a` against `b`, as a speed ratio (b's cost ÷ a's cost): the noise-robust view of the same comparison. */
const cpu = (a: RunResult, b: RunResult) =>
  a.appCpuUsPerRequest && b.appCpuUsPerRequest
    ? `; app CPU ${Math.round(a.appCpuUsPerRequest)} vs ${Math.round(b.appCpuUsPerRequest)} µs/req (${x(b.appCpuUsPerRequest / a.appCpuUsPerRequest)})`
    : '';
const errorsOf = (...runs: RunResult[]) =>
  runs
    .filter((run) => run.flagged)
    .map((run) => ` [run ${run.app}/${run.scenario} had ${run.non2xx} non-2xx, ${run.errors} errors${run.problem ? `, failed check: ${run.problem}` : ''}]`)
    .join('');
const clean = (...runs: RunResult[]) => runs.every((run) => !run.flagged);
const near = (value: number, target: number) => Math.abs(value - target) <= COUNT_TOLERANCE;
const atMost = (value: number, limit: number) => value <= limit + COUNT_TOLERANCE;

/** Redis per request as both counts: what the app sent (round trips, from the MONITOR sample) and what Redis executed in the window. */
function redisCounts(run: RunResult): string {
  const sent = run.redisSent ? `${n(run.redisSent.perRequest)} sent (${commands(run.redisSent.byCommand)})` : 'sent not sampled';
  return `${sent}, ${n(run.redisPerRequest)} executed (${commands(run.redisByCommand)})`;
}

/** Round trips per request: a MULTI … EXEC transaction (EzSession's read: MULTI, INFO, MGET, EXEC) is sent as one. */
function roundTripsSent(sent: NonNullable<RunResult['redisSent']>): number {
  return sent.perRequest - 3 * (sent.byCommand.exec ?? 0);
}

/** Write retries per write in the window, when the app reports them. */
function retriesPerWrite(run: RunResult): number | undefined {
  return run.writes ? run.writes.retries / Math.max(1, run.writes.writes) : undefined;
}

/** MySQL statements per request less those the window's retries added: the fast path's. */
function fastPathStatements(run: RunResult): number {
  const retries = run.writes && run.requests > 0 ? run.writes.retries / run.requests : 0;
  return run.mysqlPerRequest - STATEMENTS_PER_RETRY * retries;
}

/** The issues' targets for EzSession (issue 10: the three read ratios; issue 11: the write path), each PASS, MISS or SKIP with its numbers. */
export function evaluateTargets(runs: RunResult[], scale?: ScaleResult[], revocation?: RevocationResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const ez = (scenario: ScenarioId) => findRun(runs, 'ezsession', scenario);
  const es = (scenario: ScenarioId) => findRun(runs, 'express-session', scenario);
  const missing = (what: string): TargetCheck => ({ pass: false, text: `${what}: not measured in this run` });
  const vsExpressSession = (scenario: ScenarioId) => ({ scenario, against: [{ app: 'express-session' as const, scenario }] });

  {
    const run = ez('untouched');
    const bare = findRun(runs, 'bare', 'untouched');
    if (!run || !bare) checks.push(missing('untouched'));
    else {
      const ratio = run.rps / bare.rps;
      checks.push({
        pass: ratio >= 0.95 && near(run.redisPerRequest, 0) && near(run.mysqlPerRequest, 0) && clean(run, bare),
        text:
          `untouched: ${x(ratio)} bare NestJS (${rps(run)} vs ${rps(bare)} req/s; target ≥ 0.95×${cpu(run, bare)}), ` +
          `${n(run.redisPerRequest)} Redis / ${n(run.mysqlPerRequest)} MySQL per request (target 0 / 0)${errorsOf(run, bare)}`,
        profile: { scenario: 'untouched', against: [{ app: 'bare', scenario: 'untouched' }] }
      });
    }
  }
  {
    const run = ez('claims-read');
    const tuned = findRun(runs, 'jwt-key', 'claims-read');
    const plain = findRun(runs, 'jwt-string', 'claims-read');
    if (!run || !tuned) checks.push(missing('claims-read'));
    else {
      const ratio = run.rps / tuned.rps;
      const vsPlain = plain ? `; ${x(run.rps / plain.rps)} @nestjs/jwt with a string secret (${rps(plain)} req/s)` : '';
      checks.push({
        pass: ratio >= 1.0 && near(run.redisPerRequest, 0) && near(run.mysqlPerRequest, 0) && clean(run, tuned),
        text:
          `claims-read: ${x(ratio)} @nestjs/jwt with a KeyObject secret (${rps(run)} vs ${rps(tuned)} req/s; target ≥ 1.00×${cpu(run, tuned)})${vsPlain}; ` +
          `${n(run.redisPerRequest)} Redis / ${n(run.mysqlPerRequest)} MySQL per request (target 0 / 0)${errorsOf(run, tuned)}`,
        profile: { scenario: 'claims-read', against: [{ app: 'jwt-key', scenario: 'claims-read' }] }
      });
    }
  }
  for (const [scenario, floor] of [
    ['stored-read', 1.3],
    ['stored-read-1k', 1.5]
  ] as const) {
    const run = ez(scenario);
    const other = es(scenario);
    if (!run || !other) checks.push(missing(scenario));
    else {
      const ratio = run.rps / other.rps;
      // At most one round trip: the read transaction (MULTI / INFO / MGET / EXEC, sent together), shared by the reads of one event-loop turn.
      const oneCommand = run.redisSent !== undefined && atMost(roundTripsSent(run.redisSent), 1);
      checks.push({
        pass: oneCommand && near(run.mysqlPerRequest, 0) && ratio >= floor && clean(run, other),
        text:
          `${scenario} (@Session(), cache hit): ${x(ratio)} express-session (${rps(run)} vs ${rps(other)} req/s; target ≥ ${floor.toFixed(2)}×${cpu(run, other)}); ` +
          `Redis ${redisCounts(run)} / ${n(run.mysqlPerRequest)} MySQL per request (target at most 1 round trip / 0)${errorsOf(run, other)}`,
        profile: vsExpressSession(scenario)
      });
    }
  }

  // Issue 11: the write path.
  {
    const run = ez('write');
    const other = es('write');
    if (!run || !other) checks.push(missing('write'));
    else {
      const ratio = run.rps / other.rps;
      const fastPath = fastPathStatements(run);
      const sent = run.redisSent && roundTripsSent(run.redisSent);
      const cpuRatio = run.appCpuUsPerRequest && other.appCpuUsPerRequest ? run.appCpuUsPerRequest / other.appCpuUsPerRequest : undefined;
      checks.push({
        pass:
          atMost(fastPath, 1) && sent !== undefined && atMost(sent, 2) && ratio >= 0.7 && cpuRatio !== undefined && cpuRatio <= 1.5 && clean(run, other),
        text:
          `write (@Session(), unlocked): ${x(ratio)} express-session (${rps(run)} vs ${rps(other)} req/s; target ≥ 0.70×); ` +
          `app CPU ${us(run.appCpuUsPerRequest)} vs ${us(other.appCpuUsPerRequest)} µs/req (${cpuRatio === undefined ? '–' : x(cpuRatio)} express-session's; target ≤ 1.50×); ` +
          `${n(fastPath)} MySQL statements per request on the fast path (${n(run.mysqlPerRequest)} in all, ${retriesText(run)}; target ≤ 1); ` +
          `Redis ${redisCounts(run)} per request (target ≤ 2 round trips, the read before the handler included: ${n(sent ?? NaN)})${errorsOf(run, other)}`,
        profile: vsExpressSession('write')
      });
    }
  }
  {
    const run = ez('first-visit');
    const other = es('first-visit');
    if (!run || !other) checks.push(missing('first-visit'));
    else {
      const ratio = run.rps / other.rps;
      const sent = run.redisSent?.perRequest;
      checks.push({
        pass: near(run.mysqlPerRequest, 1) && sent !== undefined && near(sent, 1) && ratio >= 0.8 && clean(run, other),
        text:
          `first-visit: ${x(ratio)} express-session (${rps(run)} vs ${rps(other)} req/s; target ≥ 0.80×${cpu(run, other)}); ` +
          `${n(run.mysqlPerRequest)} MySQL statements (${mysqlKinds(run)}) and Redis ${redisCounts(run)} per request (target 1 statement + 1 command sent)${errorsOf(run, other)}`,
        profile: vsExpressSession('first-visit')
      });
    }
  }
  {
    const run = ez('locked-inc');
    const other = es('locked-inc');
    if (!run || !other) checks.push(missing('locked-inc'));
    else {
      const ratio = run.rps / other.rps;
      const exact = run.increments !== undefined && run.increments.stored === run.increments.answered;
      checks.push({
        pass: ratio >= 0.6 && run.mysqlPerRequest < 4 - COUNT_TOLERANCE && exact && clean(run, other),
        text:
          `locked-inc (@Session({ lock: true }) increment, pool of sessions): ${x(ratio)} express-session's unlocked increment (${rps(run)} vs ${rps(other)} req/s; target ≥ 0.60×${cpu(run, other)}); ` +
          `${n(run.mysqlPerRequest)} MySQL statements (${mysqlKinds(run)}) per request (target < 4), Redis ${redisCounts(run)}; ` +
          `increments stored ${run.increments ? `${run.increments.stored} of ${run.increments.answered} answered` : 'not counted'} (must be all)${errorsOf(run, other)}`,
        profile: vsExpressSession('locked-inc')
      });
    }
  }
  // The same write scenarios on the 1 KB session, for reference (issue 11 sets their targets on the small one).
  for (const scenario of ['write-1k', 'first-visit-1k', 'locked-inc-1k'] as const) {
    const run = ez(scenario);
    const other = es(scenario);
    if (!run || !other) continue;
    checks.push({
      text:
        `  1 KB session, ${scenario}: ${x(run.rps / other.rps)} express-session (${rps(run)} vs ${rps(other)} req/s${cpu(run, other)}); ` +
        `${n(run.mysqlPerRequest)} MySQL per request, Redis ${redisCounts(run)}${errorsOf(run, other)}`
    });
  }

  checks.push(...serverCostChecks(runs));
  checks.push(scaleCheck(scale));
  checks.push(...revocationChecks(revocation));

  {
    const uncontended = ez('write');
    const larger = ez('write-1k');
    for (const scenario of ['contend-keys', 'contend-key'] as const) {
      const run = ez(scenario);
      if (!run || !uncontended) {
        checks.push(missing(`${scenario} (against the uncontended write)`));
        continue;
      }
      const lost = lostKeys(run);
      const cpuRatio = run.appCpuUsPerRequest && uncontended.appCpuUsPerRequest ? run.appCpuUsPerRequest / uncontended.appCpuUsPerRequest : undefined;
      checks.push({
        pass: run.contention !== undefined && lost === 0 && cpuRatio !== undefined && cpuRatio <= 2 && clean(run),
        text:
          `${scenario} (${run.contention?.mode === 'keys' ? 'each connection its own key' : 'every connection the same key'} of ONE session): ` +
          `${run.contention ? `${lost} of ${run.contention.keys} keys lost` : 'not checked'} (target 0); ` +
          `app CPU ${us(run.appCpuUsPerRequest)} µs per write vs ${us(uncontended.appCpuUsPerRequest)} uncontended (${cpuRatio === undefined ? '–' : x(cpuRatio)}; target ≤ 2×` +
          `${larger ? `; ${us(larger.appCpuUsPerRequest)} for write-1k` : ''}${run.contention ? `; the session ends at ${run.contention.storedBytes} bytes` : ''}); ` +
          `${retriesText(run)}; p99 ${n(run.p99)} ms (uncontended ${n(uncontended.p99)} ms); ${rps(run)} req/s${errorsOf(run)}`,
        profile: { scenario, against: [{ app: 'ezsession', scenario: 'write' }] }
      });
      const other = es(scenario);
      if (other) {
        checks.push({
          text:
            `  express-session + connect-redis, ${scenario}: ${other.contention ? `${lostKeys(other)} of ${other.contention.keys} keys lost` : 'not checked'} ` +
            `(no merge: each request saves the whole session it loaded); app CPU ${us(other.appCpuUsPerRequest)} µs per write; p99 ${n(other.p99)} ms; ${rps(other)} req/s${errorsOf(other)}`
        });
      }
    }
  }
  // Issue 20: the OpenTelemetry SDK and a metric reader installed cost the read and write paths at most 3% app CPU, and the untouched path nothing.
  for (const [scenario, limit] of [['stored-read', 1.03], ['write', 1.03], ['untouched', 1.03]] as const) {
    const plain = ez(scenario);
    const otel = findRun(runs, 'ezsession-otel', scenario);
    if (!plain || !otel) {
      checks.push({ skipped: true, text: `${scenario} with the OpenTelemetry SDK: not measured in this run` });
      continue;
    }
    const cpuRatio = plain.appCpuUsPerRequest && otel.appCpuUsPerRequest ? otel.appCpuUsPerRequest / plain.appCpuUsPerRequest : undefined;
    checks.push({
      pass: cpuRatio !== undefined && cpuRatio <= limit,
      text: `${scenario} with the OpenTelemetry SDK and a metric reader: app CPU ${us(otel.appCpuUsPerRequest)} µs per request vs ${us(plain.appCpuUsPerRequest)} without (${cpuRatio === undefined ? '–' : x(cpuRatio)}; target ≤ ${x(limit)})`
    });
  }
  return checks;
}

/**
 * Issue 21: what Redis itself spends per request, EzSession against express-session in the same run:
 * its CPU time and the commands it executed (scripts' own calls included). Stored read ≤ 0.70× on both,
 * the unlocked write ≤ 1.00×; the other scenarios for reference.
 */
export function serverCostChecks(runs: RunResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const lines: Array<[ScenarioId, number | undefined]> = [
    ['stored-read', 0.7],
    ['write', 1.0],
    ['stored-read-1k', undefined],
    ['write-1k', undefined],
    ['first-visit', undefined],
    ['locked-inc', undefined],
    ['contend-keys', undefined]
  ];
  for (const [scenario, limit] of lines) {
    const run = findRun(runs, 'ezsession', scenario);
    const other = findRun(runs, 'express-session', scenario);
    if (!run || !other) {
      if (limit !== undefined) checks.push({ pass: false, text: `Redis server cost, ${scenario}: not measured in this run` });
      continue;
    }
    const cpuRatio = run.redisCpuUsPerRequest !== undefined && other.redisCpuUsPerRequest ? run.redisCpuUsPerRequest / other.redisCpuUsPerRequest : undefined;
    const commandRatio = other.redisPerRequest > 0 ? run.redisPerRequest / other.redisPerRequest : undefined;
    const text =
      `${limit === undefined ? '  ' : ''}Redis server cost, ${scenario}: CPU ${run.redisCpuUsPerRequest?.toFixed(1) ?? '–'} vs ${other.redisCpuUsPerRequest?.toFixed(1) ?? '–'} µs/req ` +
      `(${cpuRatio === undefined ? '–' : x(cpuRatio)} express-session's), commands executed ${n(run.redisPerRequest)} vs ${n(other.redisPerRequest)} per request ` +
      `(${commandRatio === undefined ? '–' : x(commandRatio)}: ${commands(run.redisByCommand)} vs ${commands(other.redisByCommand)})` +
      `${limit === undefined ? '' : `; target ≤ ${limit.toFixed(2)}× on both`}${errorsOf(run, other)}`;
    checks.push(
      limit === undefined
        ? { text }
        : { pass: cpuRatio !== undefined && commandRatio !== undefined && cpuRatio <= limit && commandRatio <= limit && clean(run, other), text }
    );
  }
  return checks;
}

/** Keys a contention run lost, in the store or as read (each counted once). */
export function lostKeys(run: RunResult): number {
  return run.contention ? new Set([...run.contention.lostInStore, ...run.contention.lostInRead]).size : 0;
}

function retriesText(run: RunResult): string {
  const perWrite = retriesPerWrite(run);
  return perWrite === undefined ? 'retries not reported' : `${perWrite.toFixed(3)} retries per write (${run.writes!.retries} of ${run.writes!.writes} writes)`;
}

function mysqlKinds(run: RunResult): string {
  return commands(Object.fromEntries(Object.entries(run.mysqlByCommand).filter(([name]) => ['select', 'insert', 'update', 'delete'].includes(name))));
}

/** Spread of a latency figure across the scale steps: (max - min) / min. */
export function latencySpread(scale: ScaleResult[], scenario: ScenarioId, pick: (run: RunResult) => number): { values: number[]; spread: number } {
  const values = scale.map((step) => step.runs.find((run) => run.scenario === scenario)).filter((run): run is RunResult => !!run).map(pick);
  return { values, spread: values.length ? (Math.max(...values) - Math.min(...values)) / Math.min(...values) : Number.NaN };
}

/** Issue 13: a revocation reaches the other instance in under 100 ms at the 99th percentile, on every topology. */
function revocationChecks(revocation: RevocationResult[] | undefined): TargetCheck[] {
  if (!revocation) return [{ skipped: true, text: 'revocation across instances (p99 < 100 ms on standalone, Cluster, Sentinel): not run (a full run, or --revocation)' }];
  return revocation.map((result) => ({
    pass: result.p99 < 100 && result.missed === 0,
    text:
      `revocation across two instances, ${result.topology}: p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, max ${result.max.toFixed(2)} ms ` +
      `over ${result.revocations.toLocaleString('en-US')} revocations, ${result.missed} not heard within a second (target p99 < 100 ms, none missed)`
  }));
}

function scaleCheck(scale: ScaleResult[] | undefined): TargetCheck {
  if (!scale || scale.length < 2) return { skipped: true, text: 'scale (write latency within 20% across 10k / 100k / 1M rows): not run (npm run bench -- --scale)' };
  const rows = scale.map((step) => step.rows.toLocaleString('en-US')).join(' / ');
  const p50 = latencySpread(scale, 'write', (run) => run.p50);
  const mean = latencySpread(scale, 'write', (run) => run.mean);
  const ms = (values: number[]) => values.map((v) => `${v.toFixed(2)} ms`).join(' / ');
  const flagged = scale.flatMap((step) => step.runs).filter((run) => run.scenario === 'write' && run.flagged);
  return {
    pass: p50.spread <= 0.2 && mean.spread <= 0.2 && flagged.length === 0,
    text:
      `scale: write latency across ${rows} rows: p50 ${ms(p50.values)} (spread ${(100 * p50.spread).toFixed(0)}%), ` +
      `mean ${ms(mean.values)} (spread ${(100 * mean.spread).toFixed(0)}%); target within 20%${errorsOf(...flagged)}`
  };
}

export function commands(byCommand: Record<string, number>): string {
  const parts = Object.entries(byCommand)
    .filter(([, count]) => count >= 0.005)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([name, count]) => `${name.toUpperCase()} ${count.toFixed(2)}`);
  return parts.length ? parts.join(', ') : 'none';
}
