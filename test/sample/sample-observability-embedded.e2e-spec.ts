import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleObservabilitySpec } from './sample-observability.js';

// The embedded default: no MYSQL_URL or REDIS_URL (sql.js and the in-process cache), in a directory of its own.
delete process.env.MYSQL_URL;
delete process.env.REDIS_URL;
const directory = mkdtempSync(join(tmpdir(), 'ezsession-sample-'));
mkdirSync(join(directory, 'sample'));
process.chdir(directory);
sampleObservabilitySpec('sample /metrics and /health on the embedded store and the in-process cache', { redisTrips: 0, storeSystem: 'sqlite' });
