// `npm run bench [-- options]`: compiles the project, starts a throwaway MariaDB and Redis, then runs
// every bench app (bench/apps/*) in its own process, one after another, under the same autocannon
// load, and writes BENCHMARKS.md, bench/results.svg and bench/results.json.
//
//   --scale[=10000,100000,1000000]  also: EzSession stored-read and write with that many rows in the table
//   --gc[=1000000]                  also: p99 of EzSession stored-read and write during a GC pass over that many expired rows
//   --soak N                        also: memory after N requests of mixed scenarios
//   --no-profile                    do not re-run missed EzSession targets under node --cpu-prof
//   --profile=write,stored-read     profile these EzSession scenarios (whether or not a target missed)
//   --revocation[=1000]             how fast a revocation reaches a second instance, on Redis standalone,
//                                   Cluster and Sentinel (part of every full run; --no-revocation skips it)
//   --apps=a,b --scenarios=x,y      a partial run: printed only, BENCHMARKS.md is left alone
//   --out=DIR                       write BENCHMARKS.md, results.svg and results.json to DIR instead (also for a partial run)
//   --report-only                   re-render BENCHMARKS.md and the chart from bench/results.json
//
// Environment: BENCH_SECONDS (measured per round, default 5), BENCH_ROUNDS (default 3: each app and
// scenario measured three times, in fresh processes, rounds interleaved, best round reported), BENCH_WARMUP
// (default 3), BENCH_CONNECTIONS (default 20), BENCH_POOL (sessions for write / locked-inc, default 50),
// BENCH_SAMPLE (requests after each window whose sent Redis commands MONITOR counts, default 300).
// A quick run: BENCH_SECONDS=2 BENCH_WARMUP=1 BENCH_ROUNDS=1 npm run bench.
//
// The default run is 37 (app, scenario) runs a round (each EzSession and express-session scenario on
// the small and the 1 KB session, the two contention scenarios, bare NestJS and @nestjs/jwt), about
// 10 s each, in 3 rounds, then the profiles of missed targets: about 20-23 minutes on a 2-core
// machine (more when other processes keep it busy: quiet waits and repeated runs add up to ~4 min).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { commandRunner, ensureBinaries, Failure, signalExitCode } from './process-support.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const load = (path) => import(pathToFileURL(join(root, 'build', path)).href);


const servers = [];
const { run, forward } = commandRunner(root);
let killApps = () => {};
let signalled;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    signalled ??= signal;
    forward(signal);
    killApps();
  });
}

let exitCode = 1;
const startedAt = performance.now();
try {
  exitCode = await main(parseArgs(process.argv.slice(2)));
} catch (error) {
  if (!signalled) console.error(error instanceof Failure ? `\n${error.message}` : error);
} finally {
  killApps();
  if (servers.length > 0) await stopServers();
}
console.log(`\nBench finished in ${seconds(startedAt)}.`);
process.exit(signalled ? signalExitCode(signalled) : exitCode);

function parseArgs(argv) {
  const options = { profile: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, value] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    switch (name) {
      case '--scale':
        options.scale = (value ?? '10000,100000,1000000').split(',').map(Number);
        if (options.scale.some((n) => !Number.isInteger(n) || n < 1)) throw new Failure(`--scale takes row counts: ${value}`);
        break;
      case '--gc':
        options.gc = Number(value ?? 1_000_000);
        if (!Number.isInteger(options.gc) || options.gc < 1) throw new Failure(`--gc takes a number of expired rows: ${value}`);
        break;
      case '--soak': {
        const amount = Number(value ?? argv[++i]);
        if (!Number.isInteger(amount) || amount < 1) throw new Failure('--soak takes a number of requests, e.g. --soak 200000');
        options.soak = amount;
        break;
      }
      case '--revocation':
        options.revocations = Number(value ?? 1000);
        if (!Number.isInteger(options.revocations) || options.revocations < 1) throw new Failure(`--revocation takes a number of revocations: ${value}`);
        break;
      case '--no-revocation':
        options.revocations = 0;
        break;
      case '--no-profile':
        options.profile = false;
        break;
      case '--profile':
        options.profile = value ? value.split(',') : true;
        break;
      case '--apps':
        options.apps = value.split(',');
        break;
      case '--scenarios':
        options.scenarios = value.split(',');
        break;
      case '--out':
        if (!value) throw new Failure('--out takes a directory: --out=/tmp/bench-report');
        options.out = value;
        break;
      case '--report-only':
        options.reportOnly = true;
        break;
      default:
        throw new Failure(`Unknown option ${arg} (see the top of scripts/bench.mjs)`);
    }
  }
  return options;
}

function envNumber(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Failure(`${name} must be a positive number, got ${raw}`);
  return value;
}

async function main(options) {
  const settings = {
    connections: envNumber('BENCH_CONNECTIONS', 20),
    warmupSeconds: envNumber('BENCH_WARMUP', 3),
    seconds: envNumber('BENCH_SECONDS', 5),
    rounds: Math.max(1, Math.round(envNumber('BENCH_ROUNDS', 3))),
    pool: envNumber('BENCH_POOL', 50),
    sample: Math.round(envNumber('BENCH_SAMPLE', 300)),
  };

  // Our own tsc rather than `npx tsc`, which could fetch the unrelated `tsc` package.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  if ((await run(process.execPath, [tsc, '-p', 'tsconfig.json'])) !== 0) {
    throw new Failure('TypeScript compilation failed (tsc -p tsconfig.json).');
  }
  if (signalled) return 1;

  const { runBench, writeReport, rerender } = await load('bench/bench.js');
  if (options.reportOnly) {
    rerender(root);
    console.log('Rendered BENCHMARKS.md and bench/results.svg from bench/results.json.');
    return 0;
  }

  await ensureBinaries(run, [
    { binary: 'mariadbd', aptPackage: 'mariadb-server' },
    { binary: 'mariadb-install-db', aptPackage: 'mariadb-server' },
    { binary: 'redis-server', aptPackage: 'redis-server' },
    // The revocation measurement forms a Redis Cluster.
    { binary: 'redis-cli', aptPackage: 'redis-tools' },
  ]);

  // The app gets CPU 0 to itself; this process (autocannon) and the servers it starts get CPU 1.
  const { canPin, killAllApps } = await load('bench/processes.js');
  killApps = killAllApps;
  if (canPin()) {
    const pinned = spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
    if (pinned.status === 0) Object.assign(settings, { appCpu: 0, loadCpu: 1 });
  }
  console.log(
    settings.appCpu === undefined
      ? 'Not pinning: taskset missing or fewer than 2 CPUs.'
      : 'App pinned to CPU 0; load generator, MariaDB and Redis on CPU 1.',
  );
  console.log(
    `autocannon: ${settings.connections} connections, ${settings.warmupSeconds} s warm-up + ${settings.seconds} s measured, ${settings.rounds} round(s); pool of ${settings.pool} sessions.\n`,
  );

  const urls = await startServers();
  if (signalled) return 1;
  const pidOf = (server) => server.running?.child?.pid;
  const context = {
    root,
    mysqlUrl: urls.mysql,
    redisUrl: urls.redis,
    serverPids: { mysql: pidOf(servers[0]), redis: pidOf(servers[1]) },
    settings,
    log: (message) => console.log(message),
  };
  // A full run also measures revocation across instances; a partial one only when asked.
  if (options.revocations === undefined && !options.apps && !options.scenarios) options.revocations = 1000;
  const results = await runBench(context, options);
  if (signalled) return 1;

  if (options.out) {
    writeReport(root, results, options.out);
    console.log(`\nWrote BENCHMARKS.md, results.svg and results.json to ${options.out}.`);
  } else if (options.apps || options.scenarios) {
    console.log('\nPartial run (--apps / --scenarios): BENCHMARKS.md not rewritten.');
  } else {
    writeReport(root, results);
    console.log('\nWrote BENCHMARKS.md, bench/results.svg and bench/results.json.');
  }
  return 0;
}


async function startServers() {
  const { MariaDbServer } = await load('test/support/mariadb-server.js');
  const { RedisServer } = await load('test/support/redis-server.js');
  // Sized like a small production server, not like the tests' quick-start one: with an 8 MiB redo
  // log, the GC run's bulk deletes stall every writer on checkpoints, which says nothing about EzSession.
  const mysql = new MariaDbServer({ bufferPoolMiB: 1024, logFileMiB: 256 });
  const redis = new RedisServer();
  servers.push(mysql, redis);
  const since = performance.now();
  await Promise.all([mysql.start(), redis.start()]);
  console.log(`MariaDB ${mysql.url} and Redis ${redis.url} started in ${seconds(since)}.\n`);
  return { mysql: mysql.url, redis: redis.url };
}

async function stopServers() {
  const since = performance.now();
  const results = await Promise.allSettled(servers.map((server) => server.stop()));
  for (const { reason } of results.filter(({ status }) => status === 'rejected')) console.error(reason);
  console.log(`Stopped MariaDB and Redis in ${seconds(since)}.`);
}


function seconds(since) {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}
