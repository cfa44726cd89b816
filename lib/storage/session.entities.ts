import { EntitySchema } from 'typeorm';
import { revokedTableName } from './session-table.sql.js';

/** One session row, as the entities describe it (column names as in the table). */
export interface EzSessionRecord {
  sid: string;
  data: string;
  flash: string | null;
  /** The user id's UTF-8 bytes (VARBINARY: compared byte for byte). */
  user_id: Buffer | null;
  created_at: string;
  updated_at: string;
  expires_at: string;
  version: string;
}

/** One tombstone of a revoked session id. */
export interface EzSessionRevokedRecord {
  sid: string;
  revoked_at: string;
  expires_at: string;
}

const ASCII = { charset: 'ascii', collation: 'ascii_bin' } as const;

/**
 * EzSession's two tables (MySQL / MariaDB) as TypeORM entities, for apps that manage their schema
 * with migrations: add them to the DataSource's `entities`, run `typeorm migration:generate`, and
 * set EzSession's `createTable: false`. They describe exactly what EzSession's own DDL creates
 * (the test suite checks that a generated migration makes the same tables, indexes included),
 * so an app may use either. Pass the same `tableName` as to `EzSessionModule.forRoot`.
 */
export function createEzSessionEntities(options: { tableName?: string } = {}): [EntitySchema<EzSessionRecord>, EntitySchema<EzSessionRevokedRecord>] {
  const table = options.tableName ?? 'ez_sessions';
  const revoked = revokedTableName(table);
  const sessions = new EntitySchema<EzSessionRecord>({
    name: table,
    tableName: table,
    columns: {
      sid: { type: 'char', length: 36, primary: true, ...ASCII },
      data: { type: 'mediumtext', ...ASCII },
      flash: { type: 'mediumtext', nullable: true, ...ASCII },
      user_id: { type: 'varbinary', length: 255, nullable: true },
      created_at: { type: 'bigint' },
      updated_at: { type: 'bigint' },
      expires_at: { type: 'bigint' },
      version: { type: 'bigint', default: 0 }
    },
    indices: [
      { name: `${table}_expires_at`, columns: ['expires_at'] },
      { name: `${table}_user_id`, columns: ['user_id'] }
    ]
  });
  const tombstones = new EntitySchema<EzSessionRevokedRecord>({
    name: revoked,
    tableName: revoked,
    columns: {
      sid: { type: 'char', length: 36, primary: true, ...ASCII },
      revoked_at: { type: 'bigint' },
      expires_at: { type: 'bigint' }
    },
    indices: [
      { name: `${revoked}_revoked_at`, columns: ['revoked_at'] },
      { name: `${revoked}_expires_at`, columns: ['expires_at'] }
    ]
  });
  return [sessions, tombstones];
}
