import type { StoreDialect } from '../options/resolved-options.js';

/** The DDL run at boot (`createTable: true`); the README shows the same statements. */
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
  "expires_at" INTEGER NOT NULL
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

/** Tombstones of destroyed, regenerated and revoked session ids, kept until their last token expires. */
export function revokedTableName(table: string): string {
  return `${table}_revoked`;
}
