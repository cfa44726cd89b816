// `npm test [-- filter...]`: compiles the project, starts a throwaway MariaDB and Redis
// (unless MYSQL_URL / REDIS_URL point at existing ones) and runs the compiled specs: all of them on
// ioredis 5, then the Redis-heavy ones again on ioredis 6. The filters apply to both passes.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { commandRunner, ensureBinaries, Failure, signalExitCode } from './process-support.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2);

const REQUIRED_BINARIES = [
  { binary: 'mariadbd', aptPackage: 'mariadb-server' },
  { binary: 'mariadb-install-db', aptPackage: 'mariadb-server' },
  { binary: 'redis-server', aptPackage: 'redis-server' },
  // Forms the throwaway Redis Cluster (test/support/redis-cluster.ts); redis-server depends on it.
  { binary: 'redis-cli', aptPackage: 'redis-tools' },
  // The sample's browser test drives Debian's Chromium through playwright-core.
  { binary: 'chromium', aptPackage: 'chromium' },
  // The three-node Galera cluster of test/multi-primary (test/support/galera-cluster.ts): the wsrep
  // provider, and rsync for the state transfer a node rejoining after a kill may need.
  { binary: '/usr/lib/galera/libgalera_smm.so', aptPackage: 'galera-4' },
  { binary: 'rsync', aptPackage: 'rsync' },
];

// The whole suite runs on ioredis 5, what TypeORM 1 apps have (typeorm peers on ioredis ^5). The
// specs that lean on Redis behaviour run again on ioredis 6, the devDependency alias `ioredis-6`,
// which scripts/ioredis-6/register.mjs loads wherever `ioredis` is imported. Each pass tells
// test/support/ioredis-major.e2e-spec.ts which major it must find.
const IOREDIS_PASSES = [
  { package: 'ioredis', major: '5', nodeArgs: [] },
  { package: 'ioredis-6', major: '6', nodeArgs: ['--import', pathToFileURL(join(root, 'scripts', 'ioredis-6', 'register.mjs')).href] }
];
const OTHER_MAJOR_SPECS = [
  'test/support/ioredis-major.e2e-spec.ts',
  'test/core/storage-economy.e2e-spec.ts',
  // the cache's failover guard: its read script is sent with ioredis's own Command
  'test/core/redis-reign.e2e-spec.ts',
  // "regenerate, destroy and revoke" and "revocation across instances"
  'test/lifecycle/control.e2e-spec.ts',
  'test/reliability/redis-outage.e2e-spec.ts',
  'test/reliability/revocation-channel.e2e-spec.ts',
  // a boot that must not wait forever for the revocation subscription
  'test/reliability/subscription-stall.e2e-spec.ts',
  // sockets of a session revoked on another instance, told over Redis pub/sub
  'test/ws/socket-sessions.e2e-spec.ts'
];

// Every spec file gets at most this long (node --test's --test-timeout, which bounds each file's
// process): a spec that hangs, or leaves a client retrying a stopped server so its process never
// exits, fails the run instead of stalling it. The slowest topology spec files (Redis Cluster and
// Sentinel, failovers on both adapters) took at most 80 s in 50 runs on a 2-CPU machine at load
// 12-16 beside a CPU hog, and the whole suite less than 10 minutes. `TEST_FILE_TIMEOUT_MS=N` changes it.
const DEFAULT_FILE_TIMEOUT_MS = 10 * 60_000;

const { run, forward } = commandRunner(root);
let signalled;
const servers = [];

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    signalled ??= signal;
    forward(signal);
  });
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  // After a signal the foreground command's failure is expected, not news.
  if (!signalled) console.error(error instanceof Failure ? `\n${error.message}` : error);
} finally {
  if (servers.length > 0) await stopServers();
}
process.exit(signalled ? signalExitCode(signalled) : exitCode);

// `TEST_REPORT=FILE` also writes the markdown report of scripts/test-report.mjs to FILE.
function extraReporters() {
  const file = process.env.TEST_REPORT;
  return file ? [`--test-reporter=${join(root, 'scripts', 'test-report.mjs')}`, `--test-reporter-destination=${file}`] : [];
}

async function main() {
  const fileTimeoutMs = fileTimeout(process.env.TEST_FILE_TIMEOUT_MS, DEFAULT_FILE_TIMEOUT_MS);
  await ensureBinaries(run, REQUIRED_BINARIES);

  // Our own tsc rather than `npx tsc`, which would download the unrelated `tsc` package if typescript were missing.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  if ((await run(process.execPath, [tsc, '-p', 'tsconfig.json'])) !== 0) {
    throw new Failure('TypeScript compilation failed (tsc -p tsconfig.json).');
  }

  const specs = findSpecs();
  if (specs.length === 0) {
    throw new Failure(filters.length ? `No spec file matches ${filters.join(', ')}.` : 'No spec files found.');
  }
  const passes = [
    { ...IOREDIS_PASSES[0], specs },
    { ...IOREDIS_PASSES[1], specs: findSpecs(otherMajorSpecs()) }
  ];

  // Strict: a promise rejection nobody handles fails the spec process even if something listens for
  // 'unhandledRejection' (Nest and test runners may); apps the specs spawn inherit it through NODE_OPTIONS.
  const nodeOptions = [process.env.NODE_OPTIONS, '--unhandled-rejections=strict'].filter(Boolean).join(' ');
  const env = { ...process.env, NODE_OPTIONS: nodeOptions, ...(await startServers()) };
  const outcomes = [];
  for (const [index, pass] of passes.entries()) {
    if (signalled) return 1;
    const { version } = installedPackage(pass.package);
    const where = pass.package === 'ioredis' ? 'node_modules/ioredis' : `node_modules/${pass.package}, loaded for every import of 'ioredis'`;
    const heading = `Pass ${index + 1} of ${passes.length}: ioredis ${version} (${where})`;
    if (pass.specs.length === 0) {
      console.log(`\n=== ${heading}: skipped, no spec of its list matches ${filters.join(', ')}\n`);
      continue;
    }
    console.log(`\n=== ${heading}: ${pass.specs.length} of ${specs.length} spec files\n`);
    const code = await run(
      process.execPath,
      [
        ...pass.nodeArgs,
        '--enable-source-maps', '--test', '--test-concurrency=1', `--test-timeout=${fileTimeoutMs}`,
        '--test-reporter=spec', '--test-reporter-destination=stdout',
        // The report is of the first pass: written again by the second, it would hold only that pass's few specs.
        ...(index === 0 ? extraReporters() : []),
        ...pass.specs
      ],
      { env: { ...env, EZ_EXPECT_IOREDIS_MAJOR: pass.major } },
    );
    outcomes.push({ heading, code });
  }

  console.log();
  for (const { heading, code } of outcomes) console.log(`${heading}: ${code === 0 ? 'passed' : `FAILED (exit code ${code})`}`);
  return outcomes.find(({ code }) => code !== 0)?.code ?? 0;
}

/** OTHER_MAJOR_SPECS, once each is known to exist: a renamed spec must not silently drop out of the second pass. */
function otherMajorSpecs() {
  const missing = OTHER_MAJOR_SPECS.filter((source) => !existsSync(join(root, source)));
  if (missing.length > 0) throw new Failure(`OTHER_MAJOR_SPECS in scripts/test.mjs names missing files: ${missing.join(', ')}`);
  return OTHER_MAJOR_SPECS;
}

function installedPackage(name) {
  return JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8'));
}

/**
 * Compiled specs whose source still exists, matched by the filters and, when given, among `sources`:
 * unit specs beside the code (lib/…/x.spec.ts) first, then the end-to-end specs under test/.
 */
function findSpecs(sources) {
  return ['lib', 'test'].flatMap((dir) => {
    const compiledDir = join(root, 'build', dir);
    if (!existsSync(compiledDir)) return [];
    return readdirSync(compiledDir, { recursive: true })
      .filter((file) => /\.(e2e-)?spec\.js$/.test(file))
      .map((file) => ({ compiled: join('build', dir, file), source: join(dir, file.replace(/\.js$/, '.ts')) }))
      // build/ may still hold the output of specs that were since renamed or deleted.
      .filter(({ source }) => existsSync(join(root, source)))
      .filter(({ source }) => sources === undefined || sources.includes(source))
      .filter(({ source }) => filters.length === 0 || filters.some((filter) => source.includes(filter)))
      .map(({ compiled }) => compiled)
      .sort();
  });
}

async function startServers() {
  const wanted = [];
  if (!process.env.MYSQL_URL) wanted.push({ envVar: 'MYSQL_URL', module: 'mariadb-server.js', className: 'MariaDbServer' });
  if (!process.env.REDIS_URL) wanted.push({ envVar: 'REDIS_URL', module: 'redis-server.js', className: 'RedisServer' });

  const started = await Promise.all(
    wanted.map(async ({ envVar, module, className }) => {
      const url = pathToFileURL(join(root, 'build', 'test', 'support', module)).href;
      const server = new (await import(url))[className]();
      servers.push(server);
      const startedAt = performance.now();
      await server.start();
      console.log(`${className}: ${server.url} (started in ${seconds(startedAt)})`);
      return [envVar, server.url];
    }),
  );
  for (const envVar of ['MYSQL_URL', 'REDIS_URL']) {
    if (process.env[envVar]) console.log(`Using ${envVar} from the environment`);
  }
  console.log();
  return Object.fromEntries(started);
}

async function stopServers() {
  const stoppedAt = performance.now();
  const results = await Promise.allSettled(servers.map((server) => server.stop()));
  for (const { reason } of results.filter(({ status }) => status === 'rejected')) console.error(reason);
  console.log(`\nStopped test servers in ${seconds(stoppedAt)}.`);
}


function fileTimeout(value, fallback) {
  if (value === undefined || value === '') return fallback;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0) throw new Failure(`TEST_FILE_TIMEOUT_MS must be a positive whole number of milliseconds, not ${JSON.stringify(value)}`);
  return ms;
}

function seconds(since) {
  return `${((performance.now() - since) / 1000).toFixed(2)}s`;
}
