import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LOOPBACK, type Endpoint } from './endpoint.js';
import { requireBinary } from './find-binary.js';
import { ManagedServer } from './managed-server.js';
import { redisInfo } from './redis-admin.js';

export interface SentinelSettings {
  masterName: string;
  master: Endpoint;
  quorum: number;
  downAfterMs: number;
  failoverTimeoutMs: number;
}

/**
 * One Redis Sentinel process watching one master. Sentinel insists on a config file it
 * can rewrite (it records the replicas, the other Sentinels and every failover there),
 * so the file lives in the temp directory and survives `kill()` / `restart()`.
 */
export class SentinelServer extends ManagedServer {
  protected readonly name = 'Sentinel';

  constructor(private readonly settings: SentinelSettings) {
    super();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get endpoint(): Endpoint {
    return { host: LOOPBACK, port: this.port };
  }

  protected async initialize(dir: string): Promise<void> {
    const { masterName, master, quorum, downAfterMs, failoverTimeoutMs } = this.settings;
    const lines = [
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${masterName} ${master.host} ${master.port} ${quorum}`,
      `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
      `sentinel failover-timeout ${masterName} ${failoverTimeoutMs}`,
      `sentinel parallel-syncs ${masterName} 1`,
      // What the other Sentinels are told to dial; pinned so it never depends on which
      // local address a link happened to use.
      `sentinel announce-ip ${LOOPBACK}`,
    ];
    await writeFile(configFile(dir), `${lines.join('\n')}\n`);
  }

  protected command(dir: string, port: number) {
    return {
      binary: requireBinary('redis-server', 'redis-server'),
      args: [configFile(dir), '--sentinel', '--port', String(port), '--sentinel', 'announce-port', String(port)],
    };
  }

  protected async probe(port: number, dir: string): Promise<void> {
    // Sentinel has no CONFIG GET dir; the config file it was started with identifies it.
    const info = await redisInfo({ host: LOOPBACK, port }, 'server');
    if (info.redis_mode !== 'sentinel' || info.config_file !== configFile(dir)) {
      throw new Error(`port ${port} is served by another Redis (${info.redis_mode}, ${info.config_file})`);
    }
  }
}

function configFile(dir: string): string {
  return join(dir, 'sentinel.conf');
}
