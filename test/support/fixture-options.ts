import { randomBytes } from 'node:crypto';
import type { EzSessionModuleOptions } from '../../lib/index.js';
import { TEST_SECRET } from '../fixtures/fixture-app.js';
import { testEnv } from './test-env.js';

/** Options on the real MariaDB and Redis, with a table and key prefix of their own so specs never share state. */
export function realStoreOptions(overrides: Partial<EzSessionModuleOptions> = {}): EzSessionModuleOptions {
  const { mysqlUrl, redisUrl } = testEnv();
  const suffix = randomBytes(4).toString('hex');
  return {
    secret: TEST_SECRET,
    database: { type: 'mysql', url: mysqlUrl },
    redis: redisUrl,
    tableName: `ez_sessions_${suffix}`,
    keyPrefix: `ezs-test-${suffix}:`,
    ...overrides
  };
}
