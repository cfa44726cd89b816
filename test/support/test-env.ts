/** Connection URLs of the MariaDB and Redis that `npm test` (scripts/test.mjs) starts. */
export function testEnv(): { mysqlUrl: string; redisUrl: string } {
  const { MYSQL_URL: mysqlUrl, REDIS_URL: redisUrl } = process.env;
  if (!mysqlUrl || !redisUrl) {
    const missing = [!mysqlUrl && 'MYSQL_URL', !redisUrl && 'REDIS_URL'].filter(Boolean).join(' and ');
    throw new Error(`${missing} not set: run the suite with \`npm test\`, which starts MariaDB and Redis`);
  }
  return { mysqlUrl, redisUrl };
}
