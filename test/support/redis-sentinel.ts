import { LOOPBACK, describeEndpoint, sameEndpoint, type Endpoint } from './endpoint.js';
import { pollUntil } from './poll.js';
import { redisInfo, withRedis } from './redis-admin.js';
import { RedisServer } from './redis-server.js';
import { SentinelServer } from './sentinel-server.js';
import { TcpProxy } from './tcp-proxy.js';

export interface RedisSentinelOptions {
  /** Default `ezsession`. */
  masterName?: string;
  /**
   * Makes the replica replicate through a `TcpProxy` (exposed as `replicationProxy`), so a
   * test can hold the replication stream back while clients and Sentinels still reach
   * both servers directly. Default false.
   */
  replicationProxy?: boolean;
  /** Default 1000: the master is declared down after a second of silence. */
  downAfterMs?: number;
  /** Default 3000: a failover attempt that stalls is retried after twice this. */
  failoverTimeoutMs?: number;
}

const SENTINELS = 3;
const QUORUM = 2;
const READY_TIMEOUT_MS = 20_000;
const FAILOVER_TIMEOUT_MS = 30_000;

// Fresh replicas sync at once instead of waiting 5 s for others to share the transfer.
const DATA_NODE_ARGS = ['--repl-diskless-sync-delay', '0'];

/**
 * Sentinel "fixes" a replica whose master address is not the master's own: after
 * failover-timeout it would send REPLICAOF <master> and bypass the proxy. Replication
 * commands other than REPLICAOF NO ONE (what a promotion sends) are refused to keep
 * the replica on the proxy.
 */
const STAY_ON_PROXY_ARGS = [
  '--user', 'default', 'on', 'nopass', '~*', '&*', '+@all',
  '-replicaof', '-slaveof', '+replicaof|no', '+slaveof|no',
];

export interface SentinelClientOptions {
  sentinels: Endpoint[];
  name: string;
}

/**
 * A throwaway master, one replica and three Sentinels (quorum 2) on 127.0.0.1, tuned
 * so a failover completes within a few seconds.
 */
export class RedisSentinelServer {
  readonly masterName: string;
  private readonly withProxy: boolean;
  private readonly downAfterMs: number;
  private readonly failoverTimeoutMs: number;
  private readonly dataNodes: RedisServer[] = [];
  private readonly sentinelServers: SentinelServer[] = [];
  private proxy?: TcpProxy;
  private replicaNode?: RedisServer;

  constructor({
    masterName = 'ezsession',
    replicationProxy = false,
    downAfterMs = 1_000,
    failoverTimeoutMs = 3_000,
  }: RedisSentinelOptions = {}) {
    this.masterName = masterName;
    this.withProxy = replicationProxy;
    this.downAfterMs = downAfterMs;
    this.failoverTimeoutMs = failoverTimeoutMs;
  }

  get sentinels(): Endpoint[] {
    return this.sentinelServers.map((sentinel) => sentinel.endpoint);
  }

  /** What ioredis needs to find the master through the Sentinels: `new Redis(sentinelOptions)`. */
  get sentinelOptions(): SentinelClientOptions {
    return { sentinels: this.sentinels, name: this.masterName };
  }

  /** Sits between the initial replica and the initial master; only with `replicationProxy: true`. */
  get replicationProxy(): TcpProxy {
    if (!this.proxy) throw new Error('RedisSentinelServer was not created with replicationProxy: true');
    return this.proxy;
  }

  /** The server that started as the replica (it stays the same process after a promotion). */
  get initialReplica(): Endpoint {
    if (!this.replicaNode) throw new Error('RedisSentinelServer has not been started');
    return this.replicaNode.endpoint;
  }

  async start(): Promise<void> {
    if (this.dataNodes.length > 0) throw new Error('RedisSentinelServer is already started');
    try {
      await this.startDataNodes();
      await this.startSentinels();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** The master every running Sentinel reports; throws while they disagree (mid-failover). */
  async currentMaster(): Promise<Endpoint> {
    const views = await Promise.all(this.runningSentinels().map((sentinel) => this.masterSeenBy(sentinel)));
    const distinct = new Set(views.map(describeEndpoint));
    if (distinct.size !== 1) throw new Error(`Sentinels disagree on the master: ${[...distinct].join(', ')}`);
    return views[0];
  }

  /** SIGKILLs the current master and returns its address; see `waitForFailover`. */
  async killMaster(): Promise<Endpoint> {
    const master = await this.currentMaster();
    await this.dataNode(master).kill();
    return master;
  }

  /**
   * Resolves with the new master once every running Sentinel reports one other than
   * `previous` and that server answers ROLE as a master.
   */
  async waitForFailover(previous: Endpoint, timeoutMs = FAILOVER_TIMEOUT_MS): Promise<Endpoint> {
    const promoted = await pollUntil(
      `Sentinels to promote a new master instead of ${describeEndpoint(previous)}`,
      async () => {
        const master = await this.currentMaster();
        if (sameEndpoint(master, previous)) return undefined;
        const [role] = await withRedis(master, (client) => client.call('ROLE') as Promise<[string]>);
        return role === 'master' ? master : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
    if (this.withProxy && sameEndpoint(promoted, this.initialReplica)) {
      // As a master it may have to become a replica again in a later failover.
      await withRedis(promoted, (client) => client.call('ACL', 'SETUSER', 'default', '+replicaof', '+slaveof'));
    }
    return promoted;
  }

  /** Stops everything this instance started and deletes their directories; safe to call twice. */
  async stop(): Promise<void> {
    const results = await Promise.allSettled([
      ...this.sentinelServers.map((sentinel) => sentinel.stop()),
      ...this.dataNodes.map((node) => node.stop()),
      ...(this.proxy ? [this.proxy.stop()] : []),
    ]);
    this.sentinelServers.length = 0;
    this.dataNodes.length = 0;
    this.proxy = undefined;
    this.replicaNode = undefined;
    const failure = results.find((result) => result.status === 'rejected');
    if (failure) throw failure.reason;
  }

  private async startDataNodes(): Promise<void> {
    const master = new RedisServer({ args: DATA_NODE_ARGS });
    this.dataNodes.push(master);
    await master.start();

    let upstream = master.endpoint;
    if (this.withProxy) {
      this.proxy = new TcpProxy(master.endpoint);
      await this.proxy.start();
      upstream = this.proxy.endpoint;
    }
    const replica = new RedisServer({
      args: [
        ...DATA_NODE_ARGS,
        '--replicaof', upstream.host, String(upstream.port),
        // The master lists the replica at the peer address of the replication link (the
        // proxy's, in proxy mode) and the listening port the replica reports, and Sentinel
        // dials what the master lists. Pinning the address keeps that the replica's own.
        '--replica-announce-ip', LOOPBACK,
        ...(this.withProxy ? STAY_ON_PROXY_ARGS : []),
      ],
    });
    this.dataNodes.push(replica);
    this.replicaNode = replica;
    await replica.start();

    // Sentinels find replicas in the master's INFO, which they reread only every 10 s.
    await pollUntil(
      'the replica to finish its first sync',
      async () => {
        const [fromReplica, fromMaster] = await Promise.all([
          redisInfo(replica.endpoint, 'replication'),
          redisInfo(master.endpoint, 'replication'),
        ]);
        const listed = fromMaster.slave0 ?? '';
        return fromReplica.master_link_status === 'up' && listed.includes(`port=${replica.port},state=online`)
          ? true
          : undefined;
      },
      { timeoutMs: READY_TIMEOUT_MS },
    );
  }

  private async startSentinels(): Promise<void> {
    const [master] = this.dataNodes;
    for (let i = 0; i < SENTINELS; i++) {
      this.sentinelServers.push(
        new SentinelServer({
          masterName: this.masterName,
          master: master.endpoint,
          quorum: QUORUM,
          downAfterMs: this.downAfterMs,
          failoverTimeoutMs: this.failoverTimeoutMs,
        }),
      );
    }
    await Promise.all(this.sentinelServers.map((sentinel) => sentinel.start()));
    // Sentinels discover each other through hello messages published every 2 s.
    await pollUntil(
      'every Sentinel to know the replica and the other Sentinels',
      async () => {
        const ready = await Promise.all(this.sentinelServers.map((sentinel) => this.sentinelIsReady(sentinel)));
        return ready.every(Boolean) ? true : undefined;
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100 },
    );
  }

  private async sentinelIsReady(sentinel: SentinelServer): Promise<boolean> {
    return withRedis(sentinel.endpoint, async (client) => {
      const fields = (await client.call('SENTINEL', 'MASTER', this.masterName)) as string[];
      const master = Object.fromEntries(fields.flatMap((value, i) => (i % 2 === 0 ? [[value, fields[i + 1]]] : [])));
      return (
        master.flags === 'master' &&
        master['num-slaves'] === '1' &&
        master['num-other-sentinels'] === String(SENTINELS - 1)
      );
    });
  }

  private async masterSeenBy(sentinel: SentinelServer): Promise<Endpoint> {
    const [host, port] = await withRedis(
      sentinel.endpoint,
      (client) => client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName) as Promise<[string, string]>,
    );
    return { host, port: Number(port) };
  }

  private runningSentinels(): SentinelServer[] {
    const running = this.sentinelServers.filter((sentinel) => sentinel.isRunning);
    if (running.length === 0) throw new Error('No Sentinel is running');
    return running;
  }

  private dataNode(endpoint: Endpoint): RedisServer {
    const node = this.dataNodes.find((candidate) => candidate.isRunning && sameEndpoint(candidate.endpoint, endpoint));
    if (!node) throw new Error(`${describeEndpoint(endpoint)} is not a running server of this topology`);
    return node;
  }
}
