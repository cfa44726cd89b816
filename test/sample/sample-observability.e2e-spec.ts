import { testEnv } from '../support/test-env.js';
import { sampleObservabilitySpec } from './sample-observability.js';

// The sample's AppModule reads MYSQL_URL and REDIS_URL when it is created: those of the test servers.
testEnv();
sampleObservabilitySpec('sample /metrics and /health on MariaDB and Redis', { redisTrips: 1, storeSystem: 'mariadb' });
