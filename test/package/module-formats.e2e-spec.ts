import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../../..');

// The same app in both module systems: boots Nest with EzSession on the embedded store, writes a
// session key, reads it back with the issued token, and prints what it read.
const APP_BODY = `
const { Controller, Get, Post, Module } = common;
class AppController {
  save(session) { session.format = FORMAT; }
  read(session) { return { format: session.format ?? null }; }
}
Controller()(AppController);
Post('save')(AppController.prototype, 'save', Object.getOwnPropertyDescriptor(AppController.prototype, 'save'));
Session()(AppController.prototype, 'save', 0);
Get('read')(AppController.prototype, 'read', Object.getOwnPropertyDescriptor(AppController.prototype, 'read'));
Session()(AppController.prototype, 'read', 0);
class AppModule {}
Module({ imports: [EzSessionModule.forRoot({ secret: 'format-test-secret-6b1f0c9e8d7a5b4c3e2f1a0b9c8d', database: { type: 'sqljs' } })], controllers: [AppController] })(AppModule);
const app = await core.NestFactory.create(AppModule, { logger: false });
await app.listen(0, '127.0.0.1');
const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
const saved = await fetch(url + '/save', { method: 'POST' });
const token = saved.headers.get('x-session-token');
const read = await fetch(url + '/read', { headers: { authorization: 'Bearer ' + token } });
console.log(JSON.stringify(await read.json()));
await app.close();
`;

describe('the built package', () => {
  let workdir: string;

  before(async () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    await run(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root });
    workdir = mkdtempSync(join(tmpdir(), 'ezsession-formats-'));
    mkdirSync(join(workdir, 'node_modules'));
    // A consumer's node_modules: this package plus the peers the app itself imports.
    symlinkSync(root, join(workdir, 'node_modules', 'nestjs-ezsession'), 'dir');
    for (const peer of ['@nestjs', 'reflect-metadata', 'sql.js']) {
      symlinkSync(join(root, 'node_modules', peer), join(workdir, 'node_modules', peer), 'dir');
    }
    writeFileSync(
      join(workdir, 'app.mjs'),
      `import 'reflect-metadata';\nimport * as common from '@nestjs/common';\nimport * as core from '@nestjs/core';\nimport { EzSessionModule, Session } from 'nestjs-ezsession';\nconst FORMAT = 'esm';\n${APP_BODY}`
    );
    writeFileSync(
      join(workdir, 'app.cjs'),
      `require('reflect-metadata');\nconst common = require('@nestjs/common');\nconst core = require('@nestjs/core');\nconst { EzSessionModule, Session } = require('nestjs-ezsession');\nconst FORMAT = 'cjs';\n(async () => {\n${APP_BODY}\n})().catch((error) => { console.error(error); process.exit(1); });`
    );
  });
  after(() => rmSync(workdir, { recursive: true, force: true }));

  const env = () => ({ ...process.env, NODE_NO_WARNINGS: '1' });

  it('loads and serves sessions from an ES module app', async () => {
    const { stdout } = await run(process.execPath, [join(workdir, 'app.mjs')], { cwd: workdir, env: env() });
    assert.deepEqual(JSON.parse(stdout.trim()), { format: 'esm' });
  });

  it('loads and serves sessions from a CommonJS app', async () => {
    const { stdout } = await run(process.execPath, [join(workdir, 'app.cjs')], { cwd: workdir, env: env() });
    assert.deepEqual(JSON.parse(stdout.trim()), { format: 'cjs' });
  });
});
