import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { DataSource } from 'typeorm';
import { EzSessionModule, EzSessionService, type EzSessionModuleOptions } from '../../lib/index.js';
import { createTableStatements } from '../../lib/storage/session-table.sql.js';
import { SessionTokenCodec } from '../../lib/token/session-token.codec.js';
import { ADAPTERS, startFixtureApp, TEST_SECRET } from '../fixtures/fixture-app.js';
import { claimsOf, SessionClient } from '../support/session-client.js';
import { testEnv } from '../support/test-env.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../../..');
const typeormCli = join(root, 'node_modules', 'typeorm', 'cli.js');
const TABLE = 'app_sessions';

/** The tables as EzSession 0.1 created them: no version column yet. */
function firstReleaseStatements(table: string): string[] {
  return [
    `CREATE TABLE \`${table}\` (
  \`sid\` CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  \`data\` MEDIUMTEXT CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  \`flash\` MEDIUMTEXT CHARACTER SET ascii COLLATE ascii_bin NULL,
  \`user_id\` VARCHAR(191) NULL,
  \`created_at\` BIGINT NOT NULL,
  \`updated_at\` BIGINT NOT NULL,
  \`expires_at\` BIGINT NOT NULL,
  PRIMARY KEY (\`sid\`),
  KEY \`${table}_expires_at\` (\`expires_at\`),
  KEY \`${table}_user_id\` (\`user_id\`)
) ENGINE=InnoDB`,
    `CREATE TABLE \`${table}_revoked\` (
  \`sid\` CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  \`revoked_at\` BIGINT NOT NULL,
  \`expires_at\` BIGINT NOT NULL,
  PRIMARY KEY (\`sid\`),
  KEY \`${table}_revoked_revoked_at\` (\`revoked_at\`),
  KEY \`${table}_revoked_expires_at\` (\`expires_at\`)
) ENGINE=InnoDB`
  ];
}

/** Columns and indexes of the two tables, as information_schema describes them: what "the same tables" means here. */
async function describeTables(mysql: Connection, database: string): Promise<unknown> {
  const [columns] = await mysql.query<RowDataPacket[]>(
    `SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_KEY
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, COLUMN_NAME`,
    [database]
  );
  const [indexes] = await mysql.query<RowDataPacket[]>(
    `SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
    [database]
  );
  const [engines] = await mysql.query<RowDataPacket[]>('SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME', [database]);
  // Column order is TypeORM's business; the defaults are compared as the server normalizes them.
  return { columns: columns.map(({ ORDINAL_POSITION, ...rest }) => rest), indexes, engines };
}

/** The one migration class typeorm wrote into `dir/migrations`. */
async function loadMigration(dir: string): Promise<new () => { up(runner: unknown): Promise<void> }> {
  const [file] = readdirSync(join(dir, 'migrations'));
  const exported = await import(pathToFileURL(join(dir, 'migrations', file)).href);
  return Object.values(exported)[0] as new () => { up(runner: unknown): Promise<void> };
}

describe('the TypeORM entities of the session tables', () => {
  const { mysqlUrl } = testEnv();
  let mysql: Connection;
  let workdir: string;
  const databases: string[] = [];

  const urlOf = (database: string) => {
    const url = new URL(mysqlUrl);
    url.pathname = `/${database}`;
    return url.toString();
  };
  async function freshDatabase(): Promise<string> {
    const name = `ezs_schema_${randomBytes(4).toString('hex')}`;
    await mysql.query(`CREATE DATABASE \`${name}\``);
    databases.push(name);
    return name;
  }
  /** `typeorm migration:generate` for a DataSource with EzSession's entities, on `database`; returns its exit code and output. */
  async function generateMigration(database: string, extraArgs: string[] = []): Promise<{ code: number; output: string; dir: string }> {
    const dir = mkdtempSync(join(workdir, 'generated-'));
    const dataSource = join(dir, 'data-source.mjs');
    writeFileSync(
      dataSource,
      `import { DataSource } from 'typeorm';\nimport { createEzSessionEntities } from ${JSON.stringify(pathToFileURL(join(root, 'build', 'lib', 'index.js')).href)};\n` +
        `export default new DataSource({ type: 'mysql', url: ${JSON.stringify(urlOf(database))}, entities: createEzSessionEntities({ tableName: '${TABLE}' }), synchronize: false });\n`
    );
    try {
      const { stdout, stderr } = await run(process.execPath, [typeormCli, 'migration:generate', join(dir, 'migrations', 'EzSession'), '-d', dataSource, '-o', '--esm', ...extraArgs], { cwd: root });
      return { code: 0, output: stdout + stderr, dir };
    } catch (error) {
      const { code, stdout = '', stderr = '' } = error as { code?: number; stdout?: string; stderr?: string };
      return { code: code ?? 1, output: stdout + stderr, dir };
    }
  }

  /** `database` with the tables a freshly generated migration makes: the migration generated, then run. */
  async function migratedDatabase(): Promise<string> {
    const database = await freshDatabase();
    const { code, output, dir } = await generateMigration(database);
    assert.equal(code, 0, output);
    const Migration = await loadMigration(dir);
    const dataSource = new DataSource({ type: 'mysql', url: urlOf(database) });
    await dataSource.initialize();
    const runner = dataSource.createQueryRunner();
    await new Migration().up(runner);
    await runner.release();
    await dataSource.destroy();
    return database;
  }

  /** `database` with the tables EzSession's own DDL makes. */
  async function ownDatabase(): Promise<string> {
    const database = await freshDatabase();
    await mysql.query(`USE \`${database}\``);
    for (const statement of createTableStatements('mysql', TABLE)) await mysql.query(statement);
    return database;
  }

  before(async () => {
    mysql = await createConnection(mysqlUrl);
    // Under build/, so that the generated data source and migrations resolve typeorm from this repository.
    workdir = mkdtempSync(join(root, 'build', 'schema-'));
  });
  after(async () => {
    for (const name of databases) await mysql.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await mysql?.end();
    rmSync(workdir, { recursive: true, force: true });
  });

  it('a migration generated by typeorm migration:generate creates exactly the tables EzSession creates, indexes included', async () => {
    const generated = await migratedDatabase();
    const own = await ownDatabase();
    assert.deepEqual(await describeTables(mysql, generated), await describeTables(mysql, own));
  });

  it("typeorm finds no more to change on tables made by EzSession's own DDL than on tables its own migration made", async () => {
    // TypeORM 1.1 on MariaDB reports nullable columns as changed even on tables it has just made
    // itself (typeorm/typeorm#11038, #8576): that is the only difference it may report here.
    const generated = await migratedDatabase();
    const own = await ownDatabase();

    const changes = async (database: string) => {
      const { output } = await generateMigration(database, ['--check']);
      if (/No changes in database schema were found/.test(output)) return [];
      const up = output.slice(output.indexOf('async up('), output.indexOf('async down('));
      return [...up.matchAll(/queryRunner\.query\(`([^`]*)`\)/g)].map((match) => match[1]).sort();
    };
    const onOwn = await changes(own);
    assert.deepEqual(onOwn, await changes(generated));
    for (const statement of onOwn) assert.match(statement, /^ALTER TABLE `app_sessions` CHANGE `(flash|user_id)` `\1` [a-z]+(\(\d+\))?( CHARACTER SET "ascii" COLLATE "ascii_bin")? NULL$/);
  });

  for (const adapter of ADAPTERS) {
    it(`EzSession runs on tables a generated migration made, with createTable: false (${adapter})`, async () => {
      const database = await migratedDatabase();

      const running = await startFixtureApp(adapter, { secret: TEST_SECRET, database: { type: 'mysql', url: urlOf(database) }, tableName: TABLE, createTable: false });
      try {
        const client = new SessionClient(running.url);
        await client.post('/set', { cart: ['apple'] });
        await client.post('/set', { coupon: 'SAVE10' });
        assert.deepEqual((await client.get('/me')).body, { data: { cart: ['apple'], coupon: 'SAVE10' } });
      } finally {
        await running.close();
      }
    });
  }
});

describe('a sessions table created by the previous release', () => {
  const { mysqlUrl } = testEnv();
  let mysql: Connection;
  const databases: string[] = [];
  const sid = '7c4f2a1e-9b3d-4e6f-8a0c-2d4e6f8a0c1b';

  /** A database holding 0.1's tables and one stored session in them, and a token for that session. */
  async function previousRelease(): Promise<{ url: string; token: string }> {
    const name = `ezs_upgrade_${randomBytes(4).toString('hex')}`;
    databases.push(name);
    await mysql.query(`CREATE DATABASE \`${name}\``);
    await mysql.query(`USE \`${name}\``);
    for (const statement of firstReleaseStatements(TABLE)) await mysql.query(statement);
    const now = Date.now();
    await mysql.query(`INSERT INTO ${TABLE} (sid, data, flash, user_id, created_at, updated_at, expires_at) VALUES (?, ?, '{}', NULL, ?, ?, ?)`, [sid, '{"cart":["apple"]}', now, now, now + 3_600_000]);
    const codec = new SessionTokenCodec({ keys: [{ id: undefined, key: createSecretKey(Buffer.from(TEST_SECRET, 'utf8')) }], clockSkew: 30 });
    const seconds = Math.floor(now / 1000);
    const token = codec.sign({ sid, stored: true, exp: seconds + 3600, sct: seconds, fp: undefined, custom: {} }, seconds);
    const url = new URL(mysqlUrl);
    url.pathname = `/${name}`;
    return { url: url.toString(), token };
  }

  before(async () => (mysql = await createConnection(mysqlUrl)));
  after(async () => {
    for (const name of databases) await mysql.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await mysql?.end();
  });

  it('gets a user_id that compares bytes at boot: its ids keep their text, "zoe" no longer finds Zoë, and emoji ids log in', async () => {
    const { url } = await previousRelease();
    // What 0.1 wrote through a utf8mb4 connection into the server's default character set.
    const now = Date.now();
    const rows: Array<[string, string]> = [
      ['1b2c3d4e-0000-4000-8000-000000000001', 'Zoë'],
      ['1b2c3d4e-0000-4000-8000-000000000002', 'Alice'],
      ['1b2c3d4e-0000-4000-8000-000000000003', 'alice']
    ];
    const name = new URL(url).pathname.slice(1);
    for (const [rowSid, userId] of rows) {
      await mysql.query(`INSERT INTO \`${name}\`.${TABLE} (sid, data, flash, user_id, created_at, updated_at, expires_at) VALUES (?, '{}', '{}', ?, ?, ?, ?)`, [rowSid, userId, now, now, now + 3_600_000]);
    }
    const [[before]] = await mysql.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${name}\`.${TABLE} WHERE user_id = 'zoe'`);
    assert.equal(Number(before.n), 1, "0.1's table matched zoe to Zoë");

    const running = await startFixtureApp('express', { secret: TEST_SECRET, database: { type: 'mysql', url }, tableName: TABLE, bind: { userAgent: false }, userId: { session: 'userId' } });
    try {
      const [[column]] = await mysql.query<RowDataPacket[]>(
        `SELECT COLUMN_TYPE AS type, IS_NULLABLE AS nullable FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = 'user_id'`,
        [name, TABLE]
      );
      assert.deepEqual({ ...column }, { type: 'varbinary(255)', nullable: 'YES' });
      const [stored] = await mysql.query<RowDataPacket[]>(`SELECT sid, HEX(user_id) AS hex FROM \`${name}\`.${TABLE} WHERE user_id IS NOT NULL ORDER BY sid`);
      assert.deepEqual(
        stored.map((row) => [row.sid, Buffer.from(String(row.hex), 'hex').toString('utf8')]),
        rows,
        'the ids are the UTF-8 of what was stored'
      );
      const service = running.app.get(EzSessionService);
      assert.deepEqual((await service.listForUser('zoe')).map((session) => session.sid), []);
      assert.deepEqual((await service.listForUser('Zoë')).map((session) => session.sid), [rows[0][0]]);
      assert.deepEqual((await service.listForUser('alice')).map((session) => session.sid), [rows[2][0]]);
      const client = new SessionClient(running.url);
      assert.equal((await client.post('/set', { userId: '😀' })).status, 200);
      assert.deepEqual((await service.listForUser('😀')).map((session) => session.sid), [claimsOf(client.token).sid]);
    } finally {
      await running.close();
    }
  });

  it('gets the version column at boot, and its sessions are read and written as before', async () => {
    const { url, token } = await previousRelease();
    const running = await startFixtureApp('express', { secret: TEST_SECRET, database: { type: 'mysql', url }, tableName: TABLE, bind: { userAgent: false } });
    try {
      const [columns] = await mysql.query<RowDataPacket[]>(`SHOW COLUMNS FROM ${TABLE} LIKE 'version'`);
      assert.equal(columns.length, 1);
      const client = new SessionClient(running.url, 'bearer', token);
      assert.deepEqual((await client.get('/me')).body, { data: { cart: ['apple'] } });
      await client.post('/set', { coupon: 'SAVE10' });
      assert.equal(claimsOf(client.token).sid, sid);
      assert.deepEqual((await client.get('/me')).body, { data: { cart: ['apple'], coupon: 'SAVE10' } });
      const [[row]] = await mysql.query<RowDataPacket[]>(`SELECT version FROM ${TABLE} WHERE sid = ?`, [sid]);
      assert.equal(Number(row.version), 1);
    } finally {
      await running.close();
    }
  });

  it('with createTable: false, refuses to boot and gives the exact ALTER TABLE statements to run, leaving the table as it was', async () => {
    const { url } = await previousRelease();
    @Module({ imports: [EzSessionModule.forRoot({ secret: TEST_SECRET, database: { type: 'mysql', url }, tableName: TABLE, createTable: false } as EzSessionModuleOptions)] })
    class AppModule {}
    await assert.rejects(NestFactory.create(AppModule, { logger: false, abortOnError: false }), (error: Error) => {
      assert.equal(
        error.message,
        `EzSession option "createTable" is false and the table ${TABLE} lacks the version column this release writes with, and has a user_id column that compares user ids ignoring case, accents or trailing spaces. Run: ` +
          `ALTER TABLE \`${TABLE}\` ADD COLUMN \`version\` BIGINT NOT NULL DEFAULT 0 AFTER \`expires_at\`; ` +
          `ALTER TABLE \`${TABLE}\` MODIFY COLUMN \`user_id\` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL; ` +
          `ALTER TABLE \`${TABLE}\` MODIFY COLUMN \`user_id\` VARBINARY(255) NULL`
      );
      return true;
    });
    const [columns] = await mysql.query<RowDataPacket[]>(`SHOW COLUMNS FROM ${TABLE} LIKE 'version'`);
    assert.equal(columns.length, 0);
    const [[userId]] = await mysql.query<RowDataPacket[]>(`SHOW COLUMNS FROM ${TABLE} LIKE 'user_id'`);
    assert.equal(userId.Type, 'varchar(191)');
  });

  it('with createTable: false, boots once the statements it gave were run', async () => {
    const { url } = await previousRelease();
    const statements = [
      `ALTER TABLE \`${TABLE}\` ADD COLUMN \`version\` BIGINT NOT NULL DEFAULT 0 AFTER \`expires_at\``,
      `ALTER TABLE \`${TABLE}\` MODIFY COLUMN \`user_id\` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL`,
      `ALTER TABLE \`${TABLE}\` MODIFY COLUMN \`user_id\` VARBINARY(255) NULL`
    ];
    for (const statement of statements) await mysql.query(statement);
    const running = await startFixtureApp('express', { secret: TEST_SECRET, database: { type: 'mysql', url }, tableName: TABLE, createTable: false, userId: { session: 'userId' } });
    try {
      const client = new SessionClient(running.url);
      assert.equal((await client.post('/set', { userId: '中' })).status, 200);
      assert.deepEqual((await running.app.get(EzSessionService).listForUser('中')).map((session) => session.sid), [claimsOf(client.token).sid]);
    } finally {
      await running.close();
    }
  });
});
