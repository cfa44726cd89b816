import type { AppId, ScenarioId } from './definitions.js';
import type { RunResult } from './runner.js';

export interface TargetCheck {
  /** Undefined: informational line, not a target. */
  pass?: boolean;
  text: string;
}

/** Per-request counts are exact (nothing is in flight at the window's ends); this only absorbs float rounding. */
export const COUNT_TOLERANCE = 0.001;

export function findRun(runs: RunResult[], app: AppId, scenario: ScenarioId): RunResult | undefined {
  return runs.find((run) => run.app === app && run.scenario === scenario);
}

const rps = (run: RunResult) => Math.round(run.rps).toLocaleString('en-US');
const x = (ratio: number) => `${ratio.toFixed(2)}×`;
const n = (value: number) => value.toFixed(2);
/** App CPU per request of `a` against `b`, as a speed ratio (b's cost ÷ a's cost): the noise-robust view of the same comparison. */
const cpu = (a: RunResult, b: RunResult) =>
  a.appCpuUsPerRequest && b.appCpuUsPerRequest
    ? `; app CPU ${Math.round(a.appCpuUsPerRequest)} vs ${Math.round(b.appCpuUsPerRequest)} µs/req (${x(b.appCpuUsPerRequest / a.appCpuUsPerRequest)})`
    : '';
const errorsOf = (...runs: RunResult[]) =>
  runs.filter((run) => run.flagged).map((run) => ` [run ${run.app}/${run.scenario} had ${run.non2xx} non-2xx, ${run.errors} errors]`).join('');

/** The targets for EzSession, each PASS or MISS with its numbers. */
export function evaluateTargets(runs: RunResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const ez = (scenario: ScenarioId) => findRun(runs, 'ezsession', scenario);
  const missing = (what: string): TargetCheck => ({ pass: false, text: `${what}: not measured in this run` });

  {
    const run = ez('untouched');
    const bare = findRun(runs, 'bare', 'untouched');
    if (!run || !bare) checks.push(missing('untouched'));
    else {
      const ratio = run.rps / bare.rps;
      const pass = ratio >= 0.95 && run.redisPerRequest === 0 && run.mysqlPerRequest === 0 && !run.flagged && !bare.flagged;
      checks.push({
        pass,
        text:
          `untouched: ${x(ratio)} bare NestJS (${rps(run)} vs ${rps(bare)} req/s; target ≥ 0.95×${cpu(run, bare)}), ` +
          `${n(run.redisPerRequest)} Redis / ${n(run.mysqlPerRequest)} MySQL per request (target 0 / 0)${errorsOf(run, bare)}`
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
        pass: ratio >= 1.0 && !run.flagged && !tuned.flagged,
        text:
          `claims-read: ${x(ratio)} tuned @nestjs/jwt (${rps(run)} vs ${rps(tuned)} req/s; target ≥ 1.00×${cpu(run, tuned)})${vsPlain}; ` +
          `${n(run.redisPerRequest)} Redis / ${n(run.mysqlPerRequest)} MySQL per request${errorsOf(run, tuned)}`
      });
    }
  }
  {
    const run = ez('stored-read');
    const es = findRun(runs, 'express-session', 'stored-read');
    if (!run || !es) checks.push(missing('stored-read'));
    else {
      const ratio = run.rps / es.rps;
      const oneRedis = Math.abs(run.redisPerRequest - 1) <= COUNT_TOLERANCE;
      checks.push({
        pass: oneRedis && run.mysqlPerRequest === 0 && ratio >= 1.3 && !run.flagged && !es.flagged,
        text:
          `stored-read: ${n(run.redisPerRequest)} Redis (${commands(run.redisByCommand)}) / ${n(run.mysqlPerRequest)} MySQL per request (target exactly 1 / 0), ` +
          `${x(ratio)} express-session (${rps(run)} vs ${rps(es)} req/s; target ≥ 1.30×${cpu(run, es)})${errorsOf(run, es)}`
      });
    }
  }
  {
    const run = ez('write');
    const es = findRun(runs, 'express-session', 'write');
    if (!run || !es) checks.push(missing('write'));
    else {
      const ratio = run.rps / es.rps;
      checks.push({
        pass: run.redisPerRequest <= 1 + COUNT_TOLERANCE && run.mysqlPerRequest <= 4 + COUNT_TOLERANCE && ratio >= 0.6 && !run.flagged && !es.flagged,
        text:
          `write (@Session(), unlocked): ${n(run.redisPerRequest)} Redis (${commands(run.redisByCommand)}) / ${n(run.mysqlPerRequest)} MySQL per request (target 1 / ≤ 4), ` +
          `${x(ratio)} express-session (${rps(run)} vs ${rps(es)} req/s; target ≥ 0.60×${cpu(run, es)})${errorsOf(run, es)}`
      });
      const locked = ez('locked-inc');
      if (locked) {
        checks.push({
          text:
            `  for comparison, the @Session({ lock: true }) write (locked-inc, same pool): ${n(locked.redisPerRequest)} Redis (${commands(locked.redisByCommand)}) / ` +
            `${n(locked.mysqlPerRequest)} MySQL per request, ${x(locked.rps / es.rps)} express-session's write (${rps(locked)} vs ${rps(es)} req/s${cpu(locked, es)})${errorsOf(locked)}`
        });
      }
    }
  }
  return checks;
}

export function commands(byCommand: Record<string, number>): string {
  const parts = Object.entries(byCommand)
    .filter(([, count]) => count >= 0.005)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([name, count]) => `${name.toUpperCase()} ${count.toFixed(2)}`);
  return parts.length ? parts.join(', ') : 'none';
}
