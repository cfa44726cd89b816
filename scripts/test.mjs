// `npm test [-- filter...]`: compiles the project, starts a throwaway MariaDB and Redis
// (unless MYSQL_URL / REDIS_URL point at existing ones) and runs the compiled specs.
import { existsSync, readdirSync } from 'node:fs';
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
];


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

  const env = { ...process.env, ...(await startServers()) };
  if (signalled) return 1;
  return run(
    process.execPath,
    ['--enable-source-maps', '--test', '--test-concurrency=1', '--test-reporter=spec', '--test-reporter-destination=stdout', ...extraReporters(), ...specs],
    { env },
  );
}


function findSpecs() {
  const buildTest = join(root, 'build', 'test');
  if (!existsSync(buildTest)) return [];
  return readdirSync(buildTest, { recursive: true })
    .filter((file) => /\.(e2e-)?spec\.js$/.test(file))
    .map((file) => ({ compiled: join('build', 'test', file), source: join('test', file.replace(/\.js$/, '.ts')) }))
    // build/ may still hold the output of specs that were since renamed or deleted.
    .filter(({ source }) => existsSync(join(root, source)))
    .filter(({ source }) => filters.length === 0 || filters.some((filter) => source.includes(filter)))
    .map(({ compiled }) => compiled)
    .sort();
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


function seconds(since) {
  return `${((performance.now() - since) / 1000).toFixed(2)}s`;
}
