import { Redis } from 'ioredis';
import { LOOPBACK, type Endpoint } from './endpoint.js';
import { requireBinary } from './find-binary.js';
import { freePort } from './free-port.js';
import { ManagedServer } from './managed-server.js';

export interface RedisServerOptions {
  /**
   * Further redis-server options (replication, cluster mode, ACL users, ...), each
   * `--name` followed by its values; they come after the defaults, so they win.
   */
  args?: readonly string[];
  /** A Redis Cluster node: a bus port of its own (`--cluster-port`), picked with the node's port. */
  clusterBus?: boolean;
}

/** A throwaway, non-persistent Redis. */
export class RedisServer extends ManagedServer {
  protected readonly name = 'Redis';
  private readonly extraArgs: readonly string[];
  private readonly clusterBus: boolean;
  private busPort?: number;

  constructor({ args = [], clusterBus = false }: RedisServerOptions = {}) {
    super();
    this.extraArgs = args;
    this.clusterBus = clusterBus;
  }

  protected override async pickMorePorts(): Promise<void> {
    // The default bus port is the node's + 10000, which need not be free (or below 65536).
    if (this.clusterBus) this.busPort = await freePort();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get endpoint(): Endpoint {
    return { host: LOOPBACK, port: this.port };
  }

  protected async initialize(): Promise<void> {}

  protected command(dir: string, port: number) {
    return {
      binary: requireBinary('redis-server', 'redis-server'),
      args: [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir,
        '--daemonize', 'no',
        ...(this.busPort === undefined ? [] : ['--cluster-port', String(this.busPort)]),
        ...this.extraArgs,
      ],
    };
  }

  protected async probe(port: number, dir: string): Promise<void> {
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null });
    client.on('error', () => {}); // failures surface through connect()
    try {
      await client.connect();
      const [, actualDir] = (await client.config('GET', 'dir')) as [string, string];
      if (actualDir !== dir) throw new Error(`port ${port} is served by another Redis (dir ${actualDir})`);
    } finally {
      client.disconnect();
    }
  }
}
