import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { totalmem, release } from 'node:os';
import { join } from 'node:path';
import { APP_ORDER, APPS, SCENARIO_ORDER, type AppId, type ScenarioId } from './definitions.js';
import { allCpus } from './processes.js';
import { renderChart, renderMarkdown, targetLines, type BenchResults, type MachineInfo } from './report.js';
import { measureRevocations, REVOCATION_TOPOLOGIES } from './revocation.js';
import { Bench, describeRun, type BenchContext, type ProfileResult, type RunResult } from './runner.js';
import { evaluateTargets } from './targets.js';

export interface BenchOptions {
  apps?: AppId[];
  scenarios?: ScenarioId[];
  /** Row counts for the scale runs; undefined: no scale runs. */
  scale?: number[];
  /** Expired rows for the GC-under-load run; undefined: not run. */
  gc?: number;
  /** Requests for the memory soak; undefined: no soak. */
  soak?: number;
  /** Revocations per Redis topology for the propagation measurement; undefined: not run. */
  revocations?: number;
  /** Profile the EzSession scenarios behind missed targets (`true`), these scenarios, or none (`false`). */
  profile: boolean | ScenarioId[];
}


export async function runBench(context: BenchContext, options: BenchOptions): Promise<BenchResults> {
  const bench = await Bench.open(context);
  try {
    const machine = await machineInfo(context.root, bench);
    // Rounds are interleaved (the whole matrix once per round), so a slow spell of the shared machine
    // hits one round of several apps rather than every round of one app.
    const byKey = new Map<string, RunResult[]>();
    const rounds = context.settings.rounds;
    for (let round = 1; round <= rounds; round++) {
      if (rounds > 1) context.log(`Round ${round} of ${rounds}`);
      for (const appId of APP_ORDER) {
        if (options.apps && !options.apps.includes(appId)) continue;
        for (const scenario of SCENARIO_ORDER) {
          if (!APPS[appId].scenarios.includes(scenario)) continue;
          if (options.scenarios && !options.scenarios.includes(scenario)) continue;
          const run = await bench.runQuietly(appId, scenario);
          context.log(describeRun(run));
          const key = `${appId}/${scenario}`;
          byKey.set(key, [...(byKey.get(key) ?? []), run]);
        }
      }
    }
    const runs = [...byKey.values()].map(bestRound);

    context.log('');
    // The scale target is not known yet: these lines are printed again, complete, at the end.
    for (const line of targetLines(runs)) context.log(line);

    const profiles: ProfileResult[] = [];
    const toProfile = profilePlan(runs, options.profile);
    if (toProfile.length) context.log(`\nProfiling (node --cpu-prof): ${toProfile.map(({ app, scenario }) => `${app}/${scenario}`).join(', ')}`);
    for (const { app: appId, scenario } of toProfile) {
      const profile = await bench.profile(appId, scenario);
      profiles.push(profile);
      const { summary } = profile;
      context.log(`  ${describeRun(profile.run)}`);
      context.log(
        `  top self time in the measured window (${(summary.totalMs / 1000).toFixed(1)} s of samples, ${((100 * summary.idleMs) / summary.totalMs).toFixed(0)}% idle; % of busy time):`
      );
      for (const entry of summary.self.slice(0, 12)) context.log(`    ${entry.percent.toFixed(1).padStart(5)}%  ${entry.frame}`);
      context.log(`  by owner: ${summary.byOwner.slice(0, 8).map((entry) => `${entry.frame} ${entry.percent.toFixed(1)}%`).join(', ')}`);
    }

    let scale: BenchResults['scale'];
    if (options.scale) {
      context.log(`\nScale: EzSession stored-read and write with ${options.scale.map((n) => n.toLocaleString('en-US')).join(', ')} rows`);
      scale = await bench.scale(options.scale);
    }

    let gcUnderLoad: BenchResults['gcUnderLoad'];
    if (options.gc) {
      context.log(`\nGC under load: a pass over ${options.gc.toLocaleString('en-US')} expired rows while EzSession serves stored-read, then write`);
      gcUnderLoad = await bench.gcUnderLoad(options.gc);
    }

    let soak: BenchResults['soak'];
    if (options.soak) {
      context.log(`\nMemory: ${options.soak.toLocaleString('en-US')} requests of mixed scenarios`);
      const results = [];
      for (const appId of ['ezsession', 'express-session'] as const) {
        const result = await bench.soak(appId, options.soak);
        context.log(
          `  ${appId}: RSS ${result.before.rssMiB.toFixed(1)} -> ${result.after.rssMiB.toFixed(1)} MiB (${result.rssGrowthPercent.toFixed(1)}%), ` +
            `heap ${result.before.heapUsedMiB.toFixed(1)} -> ${result.after.heapUsedMiB.toFixed(1)} MiB (${result.heapGrowthPercent.toFixed(1)}%), ` +
            `${result.non2xx} non-2xx, ${result.errors} errors`
        );
        results.push(result);
      }
      soak = { amount: options.soak, results };
    }

    let revocation: BenchResults['revocation'];
    if (options.revocations) {
      context.log(`\nRevocation across two instances: ${options.revocations.toLocaleString('en-US')} revocations on each Redis topology`);
      revocation = [];
      for (const topology of REVOCATION_TOPOLOGIES) {
        const result = await measureRevocations(context, topology, options.revocations);
        context.log(`  ${topology}: p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, max ${result.max.toFixed(2)} ms, ${result.missed} missed`);
        revocation.push(result);
      }
    }

    if (scale || revocation) {
      context.log('');
      for (const line of targetLines(runs, scale, revocation)) context.log(line);
    }

    const { settings } = context;
    return {
      machine,
      settings: {
        connections: settings.connections,
        warmupSeconds: settings.warmupSeconds,
        seconds: settings.seconds,
        rounds: settings.rounds,
        pool: settings.pool,
        sample: settings.sample,
        pinned: settings.appCpu !== undefined,
        appCpu: settings.appCpu,
        loadCpu: settings.loadCpu
      },
      runs,
      profiles,
      scale,
      gcUnderLoad,
      soak,
      revocation
    };
  } finally {
    await bench.close();
  }
}

/**
 * The round with the most req/s (noise on a shared machine only ever slows a run down), and a
 * flag when any round was flagged; every round's req/s is kept for the details table. Lost keys
 * are not noise: a contention result is the worst round's.
 */
function bestRound(rounds: RunResult[]): RunResult {
  const best = rounds.reduce((a, b) => (b.rps > a.rps ? b : a));
  const flagged = rounds.find((run) => run.flagged);
  const lost = (run: RunResult) => (run.contention ? new Set([...run.contention.lostInStore, ...run.contention.lostInRead]).size : 0);
  const worst = rounds.reduce((a, b) => (lost(b) > lost(a) ? b : a));
  return {
    ...best,
    contention: worst.contention,
    roundsRps: rounds.map((run) => run.rps),
    flagged: Boolean(flagged),
    non2xx: flagged && !best.flagged ? flagged.non2xx : best.non2xx,
    errors: flagged && !best.flagged ? flagged.errors : best.errors,
    problem: best.problem ?? flagged?.problem
  };
}

/**
 * What to profile: the EzSession scenario behind each missed target (or each scenario asked for)
 * and what it is compared with, to see where the difference goes; each (app, scenario) once.
 */
function profilePlan(runs: RunResult[], asked: BenchOptions['profile']): Array<{ app: AppId; scenario: ScenarioId }> {
  if (asked === false) return [];
  const checks = evaluateTargets(runs);
  const plans = Array.isArray(asked)
    ? asked.map(
        (scenario) =>
          checks.find((check) => check.profile?.scenario === scenario)?.profile ?? {
            scenario,
            against: APPS['express-session'].scenarios.includes(scenario) ? [{ app: 'express-session' as const, scenario }] : []
          }
      )
    : checks
        .filter((check) => check.pass === false && check.profile && runs.some((run) => run.app === 'ezsession' && run.scenario === check.profile!.scenario))
        .map((check) => check.profile!);
  const seen = new Set<string>();
  return plans
    .flatMap(({ scenario, against }) => [{ app: 'ezsession' as AppId, scenario }, ...against])
    .filter(({ app, scenario }) => !seen.has(`${app}/${scenario}`) && seen.add(`${app}/${scenario}`));
}

/**
 * BENCHMARKS.md, bench/results.svg and bench/results.json (the results the other two are rendered
 * from); with `outDir`, the three files go there instead (a partial run's report, to review it).
 */
export function writeReport(root: string, results: BenchResults, outDir?: string): void {
  const [markdown, data] = outDir ? [outDir, outDir] : [root, join(root, 'bench')];
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(data, 'results.svg'), renderChart(results.runs));
  writeFileSync(join(markdown, 'BENCHMARKS.md'), renderMarkdown(results));
}

/** Re-renders BENCHMARKS.md and the chart from bench/results.json. */
export function rerender(root: string): void {
  const results = JSON.parse(readFileSync(join(root, 'bench', 'results.json'), 'utf8')) as BenchResults;
  writeReport(root, results);
}

async function machineInfo(root: string, bench: Bench): Promise<MachineInfo> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const versions = await bench.serverVersions();
  const packages: Record<string, string> = {};
  for (const name of ['@nestjs/core', '@nestjs/platform-express', 'express', 'express-session', 'connect-redis', 'redis', '@nestjs/jwt', 'jsonwebtoken', 'ioredis', 'mysql2', 'typeorm', 'autocannon']) {
    try {
      packages[name] = (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      packages[name] = 'not installed';
    }
  }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).trim();
    if (dirty) commit += ' with uncommitted changes';
  } catch {
    // not a git checkout
  }
  return {
    cpus: allCpus(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1].trim() ?? 'unknown',
    memoryGiB: totalmem() / 1024 ** 3,
    kernel: release(),
    node: process.version,
    mariadb: versions.mariadb,
    redis: versions.redis,
    packages,
    commit
  };
}
