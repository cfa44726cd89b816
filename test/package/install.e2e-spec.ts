import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../../..');

// What a NestJS 12 app on TypeORM 1 already has. typeorm peers on ioredis ^5, so such an app sits on
// ioredis 5; the versions are this repo's locked ones so that npm finds them in its cache.
const APP_PACKAGES = ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express', 'reflect-metadata', 'rxjs', 'typeorm', 'ioredis', 'sql.js'];

// What GraphQL and WebSocket apps add; EzSession lists them as optional peers, and an app without them must not need them.
const OPTIONAL_TRANSPORTS = [
  '@nestjs/graphql', '@nestjs/apollo', '@apollo/server', '@nestjs/mercurius', 'mercurius', 'graphql',
  '@nestjs/websockets', '@nestjs/platform-socket.io', '@nestjs/platform-ws', 'socket.io', 'ws'
];

// Observability's optional peers: an app without them installs and boots, and gets metrics() and the health indicator.
const OPTIONAL_OBSERVABILITY = ['@opentelemetry/api', '@nestjs/terminus'];

// The plainest use, written without a compiler: a session key written by one request, read back by
// the next with the token the first one was given.
const APP = `
import 'reflect-metadata';
import { Controller, Get, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EzSessionModule, Session } from 'nestjs-ezsession';

class AppController {
  save(session) { session.x = 1; }
  read(session) { return { x: session.x ?? null }; }
}
Controller()(AppController);
for (const [route, method] of [[Post('save'), 'save'], [Get('read'), 'read']]) {
  route(AppController.prototype, method, Object.getOwnPropertyDescriptor(AppController.prototype, method));
  Session()(AppController.prototype, method, 0);
}
class AppModule {}
Module({ imports: [EzSessionModule.forRoot({ secret: 'install-test-secret-0c4e9a1b7d3f5e2a8b6c', database: { type: 'sqljs' } })], controllers: [AppController] })(AppModule);

const app = await NestFactory.create(AppModule, { logger: false });
await app.listen(0, '127.0.0.1');
const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
const saved = await fetch(url + '/save', { method: 'POST' });
const token = saved.headers.get('x-session-token');
const read = await fetch(url + '/read', { headers: { authorization: 'Bearer ' + token } });
const { EzSessionService, EzSessionHealthIndicator } = await import('nestjs-ezsession');
const metrics = app.get(EzSessionService).metrics();
const health = await app.get(EzSessionHealthIndicator).isHealthy();
console.log(JSON.stringify({ saved: saved.status, token: token !== null, read: await read.json(), writes: metrics.writes, requests: metrics.requestsNone + metrics.requestsCache, health: health.ezsession.status }));
await app.close();
`;

function lockedVersion(name: string): string {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
  const version = lock.packages[`node_modules/${name}`]?.version;
  if (!version) throw new Error(`${name} is not in package-lock.json`);
  return version;
}

/** The environment of a user's own npm: none of the settings `npm test` hands to its scripts. */
function plainNpmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // Inherited from `npm test`, these would point the install at this repository instead of the app.
  delete env.npm_config_prefix;
  delete env.npm_config_local_prefix;
  return env;
}

describe('installing the packed package into a TypeORM 1 app', () => {
  let workdir: string;
  let install: { code?: number; stdout: string; stderr: string };
  let packed: string[];

  before(async () => {
    // No build first: `npm pack` on a fresh clone must build dist/ itself (prepack).
    rmSync(join(root, 'dist'), { recursive: true, force: true });
    workdir = mkdtempSync(join(tmpdir(), 'ezsession-install-'));
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', workdir], { cwd: root, env: plainNpmEnv() });
    const [{ filename, files }] = JSON.parse(stdout) as [{ filename: string; files: Array<{ path: string }> }];
    packed = files.map((file) => file.path);

    const dependencies = Object.fromEntries(APP_PACKAGES.map((name) => [name, lockedVersion(name)]));
    const manifest = { name: 'typeorm-app', private: true, type: 'module', dependencies: { ...dependencies, 'nestjs-ezsession': `file:./${filename}` } };
    writeFileSync(join(workdir, 'package.json'), JSON.stringify(manifest, null, 2));
    writeFileSync(join(workdir, 'app.mjs'), APP);
    // A plain `npm install`: no --legacy-peer-deps, no overrides; the flags only spare the network.
    install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: workdir, env: plainNpmEnv() }).catch(
      (error: { code: number; stdout: string; stderr: string }) => error
    );
  });
  after(() => workdir && rmSync(workdir, { recursive: true, force: true }));

  it('packs a built dist/ without a build before it, with the licence and the security policy, and no sources or tests', () => {
    for (const file of ['dist/index.js', 'dist/index.d.ts', 'package.json', 'README.md', 'LICENSE', 'SECURITY.md']) assert.ok(packed.includes(file), `${file} is not in the tarball`);
    assert.deepEqual(packed.filter((file) => /^(lib|test|sample|scripts|build)\//.test(file)), []);
    assert.match(readFileSync(join(root, 'LICENSE'), 'utf8'), /^MIT License\n/);
  });

  it('installs with a plain npm install, with no peer conflict', () => {
    assert.equal(install.code ?? 0, 0, install.stderr);
    assert.doesNotMatch(install.stdout + install.stderr, /ERESOLVE/);
  });

  it('runs on the app\'s ioredis 5, the one typeorm shares', () => {
    const installed = JSON.parse(readFileSync(join(workdir, 'node_modules', 'ioredis', 'package.json'), 'utf8')) as { version: string };
    assert.match(installed.version, /^5\./);
    // No copy of its own: the library resolves the app's ioredis.
    const fromLibrary = createRequire(join(workdir, 'node_modules', 'nestjs-ezsession', 'dist', 'index.js')).resolve('ioredis');
    assert.equal(fromLibrary, join(workdir, 'node_modules', 'ioredis', 'built', 'index.js'));
  });

  it('installs none of the GraphQL and WebSocket packages, nor OpenTelemetry or terminus, which are optional peers', () => {
    const present = [...OPTIONAL_TRANSPORTS, ...OPTIONAL_OBSERVABILITY].filter((name) => existsSync(join(workdir, 'node_modules', name, 'package.json')));
    assert.deepEqual(present, []);
  });

  it('ships code that imports no GraphQL or WebSocket package when it loads, and types that name none', () => {
    const dist = join(workdir, 'node_modules', 'nestjs-ezsession', 'dist');
    const files = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((file) => /\.(js|d\.ts)$/.test(file));
    const named = new RegExp(`(?:from\\s*|import\\s*\\(\\s*|require\\(\\s*)['"](${OPTIONAL_TRANSPORTS.map((name) => name.replace(/[./]/g, '\\$&')).join('|')})(?:/[^'"]*)?['"]`);
    const imports = files.flatMap((file) => {
      const text = readFileSync(join(dist, file), 'utf8');
      return text.match(named) ? [`${file}: ${text.match(named)![0]}`] : [];
    });
    // The one exception: WsException, loaded with import() when a gateway refuses or fails a message.
    assert.deepEqual(imports, ["ws/ws-error.js: import('@nestjs/websockets'"]);
  });

  it('loads @opentelemetry/api only with import() at boot, names terminus nowhere, and types reachable from the barrel name neither', () => {
    const dist = join(workdir, 'node_modules', 'nestjs-ezsession', 'dist');
    const files = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((file) => /\.(js|d\.ts)$/.test(file));
    const named = /(?:from\s*|import\s*\(\s*|require\(\s*)['"](@opentelemetry\/api|@nestjs\/terminus)(?:\/[^'"]*)?['"]/;
    const imports = files.flatMap((file) => {
      const found = readFileSync(join(dist, file), 'utf8').match(named);
      return found ? [`${file}: ${found[0]}`] : [];
    });
    // The sink's own declaration file names the API's types; nothing the barrel exports reaches it.
    assert.deepEqual(imports.sort(), ["observability/open-telemetry.sink.d.ts: from '@opentelemetry/api'", "observability/open-telemetry.sink.js: import('@opentelemetry/api'"]);
    const barrel = readFileSync(join(dist, 'index.d.ts'), 'utf8');
    assert.doesNotMatch(barrel, /open-telemetry\.sink/);
  });

  it('boots, issues a token for a written session and reads the session back with it', async () => {
    const { stdout } = await run(process.execPath, ['app.mjs'], { cwd: workdir, env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    // Without @opentelemetry/api and terminus: metrics() counts (a first write, two requests) and the indicator answers.
    assert.deepEqual(JSON.parse(stdout.trim()), { saved: 201, token: true, read: { x: 1 }, writes: 1, requests: 2, health: 'up' });
  });
});
