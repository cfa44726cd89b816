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
  \`user_id\` VARCHAR(191) NULL,
  \`created_at\` BIGINT NOT NULL,
  \`updated_at\` BIGINT NOT NULL,
  \`expires_at\` BIGINT NOT NULL,
  \`version\` BIGINT NOT NULL DEFAULT 0,
  \`user_agent\` VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NULL,
  \`ip\` VARCHAR(45) CHARACTER SET ascii COLLATE ascii_bin NULL,
  \`device\` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
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
  "version" INTEGER NOT NULL DEFAULT 0,
  "user_agent" TEXT NULL,
  "ip" TEXT NULL,
  "device" TEXT NULL
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

/**
 * The `version` column came with the one-statement write (0.2): a table created by 0.1 lacks it.
 * This adds it; existing rows start at version 0, which the next write moves on.
 */
export function addVersionColumnStatement(dialect: StoreDialect, table: string): string {
  return dialect === 'mysql'
    ? `ALTER TABLE \`${table}\` ADD COLUMN \`version\` BIGINT NOT NULL DEFAULT 0 AFTER \`expires_at\``
    : `ALTER TABLE "${table}" ADD COLUMN "version" INTEGER NOT NULL DEFAULT 0`;
}

/** The device columns (0.3), recorded by the INSERT that creates or regenerates a session; rows from before list with them empty. */
export const DEVICE_COLUMNS = ['user_agent', 'ip', 'device'] as const;

const DEVICE_COLUMN_TYPES: Record<(typeof DEVICE_COLUMNS)[number], string> = {
  user_agent: 'VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NULL',
  ip: 'VARCHAR(45) CHARACTER SET ascii COLLATE ascii_bin NULL',
  device: 'VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL'
};

/** What adds the device columns a table made by an earlier release lacks (`columns`: those it has, lower-cased); nothing when it has them. */
export function addDeviceColumnStatements(dialect: StoreDialect, table: string, columns: ReadonlySet<string>): string[] {
  return DEVICE_COLUMNS.filter((column) => !columns.has(column)).map((column) =>
    dialect === 'mysql' ? `ALTER TABLE \`${table}\` ADD COLUMN \`${column}\` ${DEVICE_COLUMN_TYPES[column]}` : `ALTER TABLE "${table}" ADD COLUMN "${column}" TEXT NULL`
  );
}

/** The columns `table` has, lower-cased; empty when the table does not exist. */
export function columnsQuery(dialect: StoreDialect, table: string): { sql: string; params: unknown[]; column: string } {
  return dialect === 'mysql'
    ? { sql: 'SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', params: [table], column: 'name' }
    : { sql: `SELECT name FROM pragma_table_info('${table}')`, params: [], column: 'name' };
}

/** Tombstones of destroyed, regenerated and revoked session ids, kept until their last token expires. */
export function revokedTableName(table: string): string {
  return `${table}_revoked`;
}
