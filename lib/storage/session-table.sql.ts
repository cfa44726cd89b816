import type { StoreDialect } from '../options/resolved-options.js';

/** The DDL run at boot (`createTable: true`); the README shows the same statements, and the entities describe the same tables. */
export function createTableStatements(dialect: StoreDialect, table: string): string[] {
  const revoked = revokedTableName(table);
  if (dialect === 'mysql') {
    return [
      `CREATE TABLE IF NOT EXISTS \`${table}\` (
  \`sid\` CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  \`data\` MEDIUMTEXT CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  \`flash\` MEDIUMTEXT CHARACTER SET ascii COLLATE ascii_bin NULL,
  \`user_id\` VARBINARY(255) NULL,
  \`created_at\` BIGINT NOT NULL,
  \`updated_at\` BIGINT NOT NULL,
  \`expires_at\` BIGINT NOT NULL,
  \`version\` BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (\`sid\`),
  KEY \`${table}_expires_at\` (\`expires_at\`),
  KEY \`${table}_user_id\` (\`user_id\`)
) ENGINE=InnoDB`,
      `CREATE TABLE IF NOT EXISTS \`${revoked}\` (
  \`sid\` CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  \`revoked_at\` BIGINT NOT NULL,
  \`expires_at\` BIGINT NOT NULL,
  PRIMARY KEY (\`sid\`),
  KEY \`${revoked}_revoked_at\` (\`revoked_at\`),
  KEY \`${revoked}_expires_at\` (\`expires_at\`)
) ENGINE=InnoDB`
    ];
  }
  return [
    `CREATE TABLE IF NOT EXISTS "${table}" (
  "sid" TEXT NOT NULL PRIMARY KEY,
  "data" TEXT NOT NULL,
  "flash" TEXT NULL,
  "user_id" TEXT NULL,
  "created_at" INTEGER NOT NULL,
  "updated_at" INTEGER NOT NULL,
  "expires_at" INTEGER NOT NULL,
  "version" INTEGER NOT NULL DEFAULT 0
)`,
    `CREATE INDEX IF NOT EXISTS "${table}_expires_at" ON "${table}" ("expires_at")`,
    `CREATE INDEX IF NOT EXISTS "${table}_user_id" ON "${table}" ("user_id")`,
    `CREATE TABLE IF NOT EXISTS "${revoked}" (
  "sid" TEXT NOT NULL PRIMARY KEY,
  "revoked_at" INTEGER NOT NULL,
  "expires_at" INTEGER NOT NULL
)`,
    `CREATE INDEX IF NOT EXISTS "${revoked}_revoked_at" ON "${revoked}" ("revoked_at")`,
    `CREATE INDEX IF NOT EXISTS "${revoked}_expires_at" ON "${revoked}" ("expires_at")`
  ];
}

/** A column as the server describes it: its name (lower-cased) and data type (lower-cased, without length). */
export interface ColumnInfo {
  name: string;
  type: string;
}

/**
 * One change a table made by an earlier release needs. Applied at boot with `createTable: true`,
 * in order; with `createTable: false` the boot is refused with the statements to run. A release
 * that changes the table adds one here.
 */
export interface ColumnMigration {
  /** Whether the table, as its columns describe it, still needs this. */
  needed(columns: ReadonlyMap<string, ColumnInfo>, dialect: StoreDialect): boolean;
  /** What is wrong with the table without it, for the refusal: "lacks the version column ...". */
  problem: string;
  statements(dialect: StoreDialect, table: string): string[];
}

export const COLUMN_MIGRATIONS: readonly ColumnMigration[] = [
  {
    // The one-statement write (0.2): existing rows start at version 0, which the next write moves on.
    needed: (columns) => !columns.has('version'),
    problem: 'lacks the version column this release writes with',
    statements: (dialect, table) => [addVersionColumnStatement(dialect, table)]
  },
  {
    // 0.1 made user_id a VARCHAR in the server's default collation, which matched "alice " to
    // "Alice" and "zoe" to "Zoë" and refused emoji. Bytes compare exactly (VARBINARY has no pad
    // space, unlike MariaDB's utf8mb4_bin). Through utf8mb4 first, so that the bytes kept are the
    // UTF-8 of what was stored, whatever the old column's character set. SQLite's TEXT already compares bytes.
    needed: (columns, dialect) => dialect === 'mysql' && columns.has('user_id') && columns.get('user_id')!.type !== 'varbinary',
    problem: 'has a user_id column that compares user ids ignoring case, accents or trailing spaces',
    statements: (_dialect, table) => [
      `ALTER TABLE \`${table}\` MODIFY COLUMN \`user_id\` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL`,
      `ALTER TABLE \`${table}\` MODIFY COLUMN \`user_id\` VARBINARY(255) NULL`
    ]
  }
];

/** The migrations `columns` still needs, in order. */
export function pendingMigrations(dialect: StoreDialect, columns: ReadonlyMap<string, ColumnInfo>): ColumnMigration[] {
  return COLUMN_MIGRATIONS.filter((migration) => migration.needed(columns, dialect));
}

/** Adds the `version` column to a table 0.1 made. */
export function addVersionColumnStatement(dialect: StoreDialect, table: string): string {
  return dialect === 'mysql'
    ? `ALTER TABLE \`${table}\` ADD COLUMN \`version\` BIGINT NOT NULL DEFAULT 0 AFTER \`expires_at\``
    : `ALTER TABLE "${table}" ADD COLUMN "version" INTEGER NOT NULL DEFAULT 0`;
}

/** The columns `table` has, with their types; empty when the table does not exist. */
export function columnsQuery(dialect: StoreDialect, table: string): { sql: string; params: unknown[] } {
  return dialect === 'mysql'
    ? { sql: 'SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', params: [table] }
    : { sql: `SELECT name, type FROM pragma_table_info('${table}')`, params: [] };
}

/** Tombstones of destroyed, regenerated and revoked session ids, kept until their last token expires. */
export function revokedTableName(table: string): string {
  return `${table}_revoked`;
}
