import { createConnection } from 'mysql2/promise';
import { TEST_DATABASE } from './mariadb-server.js';
import { testEnv } from './test-env.js';

/**
 * The URL of the test database for a user that may read it but not write it: an app on it loads
 * sessions as usual and every write of its fails, which is how specs make a commit fail at will.
 */
export async function readOnlyDatabaseUrl(): Promise<string> {
  const admin = await createConnection(testEnv().mysqlUrl);
  try {
    await admin.query("CREATE USER IF NOT EXISTS 'ezs_reader'@'%' IDENTIFIED BY 'reader-password'");
    await admin.query(`GRANT SELECT ON \`${TEST_DATABASE}\`.* TO 'ezs_reader'@'%'`);
  } finally {
    await admin.end();
  }
  const url = new URL(testEnv().mysqlUrl);
  url.username = 'ezs_reader';
  url.password = 'reader-password';
  return url.toString();
}
