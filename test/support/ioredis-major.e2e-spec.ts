import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EzSessionModule } from '../../lib/index.js';
import { TEST_SECRET } from '../fixtures/fixture-app.js';
import { testEnv } from './test-env.js';

// scripts/test.mjs runs the suite once per ioredis major and names the major each pass must load;
// without this check a broken alias would quietly run the "other major" pass on the same ioredis.
interface LoadedPackage {
  name: string;
  version: string;
  dir: string;
}

/** The package a file belongs to: the nearest package.json above it that names one. */
function packageOf(file: string): LoadedPackage {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const { name, version } = JSON.parse(readFileSync(manifest, 'utf8')) as Partial<LoadedPackage>;
    if (name && version) return { name, version, dir };
  }
  throw new Error(`no package.json above ${file}`);
}

/** Every ioredis copy loaded in this process so far; ioredis is CommonJS, so each sits in require.cache. */
function loadedIoredis(): LoadedPackage[] {
  const byDir = new Map<string, LoadedPackage>();
  for (const file of Object.keys(createRequire(import.meta.url).cache)) {
    if (!file.includes('ioredis')) continue;
    const found = packageOf(file);
    if (found.name === 'ioredis') byDir.set(found.dir, found);
  }
  return [...byDir.values()];
}

describe('the ioredis this test pass runs on', () => {
  const expected = process.env.EZ_EXPECT_IOREDIS_MAJOR;

  it('is the major the test command announced', () => {
    assert.ok(expected, 'EZ_EXPECT_IOREDIS_MAJOR is not set: run the suite with `npm test`');
    const resolved = packageOf(fileURLToPath(import.meta.resolve('ioredis')));
    assert.equal(resolved.name, 'ioredis');
    assert.equal(resolved.version.split('.')[0], expected, `import 'ioredis' resolved to ${resolved.version} in ${resolved.dir}`);
  });

  it('is the only ioredis loaded once the library has opened its own Redis connection', async () => {
    @Module({ imports: [EzSessionModule.forRoot({ secret: TEST_SECRET, database: { type: 'sqljs' }, redis: testEnv().redisUrl })] })
    class RedisBackedModule {}
    const app = await NestFactory.createApplicationContext(RedisBackedModule, { logger: false });
    await app.close();

    const loaded = loadedIoredis();
    assert.equal(loaded.length, 1, `ioredis copies loaded: ${loaded.map(({ version, dir }) => `${version} (${dir})`).join(', ')}`);
    assert.equal(loaded[0].version.split('.')[0], expected);
    assert.equal(loaded[0].dir, packageOf(fileURLToPath(import.meta.resolve('ioredis'))).dir);
  });
});
