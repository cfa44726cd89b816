import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import calculateSlot from 'cluster-key-slot';
import { describeEndpoint, sameEndpoint, type Endpoint } from './endpoint.js';
import { requireBinary } from './find-binary.js';
import { pollUntil } from './poll.js';
import { parseInfo, redisInfo, withRedis } from './redis-admin.js';
import { RedisServer } from './redis-server.js';
import { TcpProxy, type ProxiedConnection } from './tcp-proxy.js';

const execFileAsync = promisify(execFile);

export const CLUSTER_SLOTS = 16_384;

export interface RedisClusterOptions {
  /** Default 3, the fewest Redis accepts. */
  masters?: number;
  /** Default 1; failover needs a replica. */
  replicasPerMaster?: 0 | 1;
  /**
   * Default 1000: a master silent this long is flagged, and its replica takes over about
   * a second after the others agree.
   */
  nodeTimeoutMs?: number;
  /**
   * Default false. Puts a `TcpProxy` in front of every node and has the node announce
   * the proxy's port, so clients and replicas reach it through the proxy (the cluster
   * bus stays direct): `pauseReplication(master)` can then hold back what a master
   * sends its replicas while its clients are still served.
   */
  replicationProxy?: boolean;
}

export type ClusterRole = 'master' | 'replica';

/** A node as the cluster itself describes it (`CLUSTER NODES`). */
export interface ClusterNode extends Endpoint {
  id: string;
  role: ClusterRole;
  /** The cluster has agreed this node is down. */
  failed: boolean;
  /** A replica's master. */
  masterId?: string;
  /** Inclusive ranges a master serves. */
  slots: [number, number][];
}

const READY_TIMEOUT_MS = 30_000;
const FAILOVER_TIMEOUT_MS = 30_000;

/** One node: its process and, in proxy mode, the proxy the cluster knows it by. */
class Member {
  constructor(
    readonly server: RedisServer,
    readonly proxy?: TcpProxy,
  ) {}

  /** The address the node gives clients and replicas (in CLUSTER NODES / SLOTS, MOVED). */
  get announced(): Endpoint {
    return this.proxy ? this.proxy.endpoint : this.server.endpoint;
  }

  answersAt(endpoint: Endpoint): boolean {
    return sameEndpoint(this.announced, endpoint) || sameEndpoint(this.server.endpoint, endpoint);
  }
}

/**
 * A throwaway Redis Cluster on 127.0.0.1, formed by `redis-cli --cluster create`: every
 * slot served, every replica in sync. `nodes` is the cluster's own view, reread after
 * each helper that changes it (and by `refresh()`).
 */
export class RedisClusterServer {
  private readonly masterCount: number;
  private readonly replicasPerMaster: number;
  private readonly nodeTimeoutMs: number;
  private readonly withProxies: boolean;
  private readonly members: Member[] = [];
  private readonly pausedLinks = new Map<string, ProxiedConnection[]>();
  private view: ClusterNode[] = [];

  constructor({
    masters = 3,
    replicasPerMaster = 1,
    nodeTimeoutMs = 1_000,
    replicationProxy = false,
  }: RedisClusterOptions = {}) {
    if (masters < 3) throw new Error('Redis Cluster needs at least 3 masters');
    this.masterCount = masters;
    this.replicasPerMaster = replicasPerMaster;
    this.nodeTimeoutMs = nodeTimeoutMs;
    this.withProxies = replicationProxy;
  }

  /** Addresses are the announced ones: the proxies' in proxy mode. */
  get nodes(): readonly ClusterNode[] {
    return this.view;
  }

  get masters(): ClusterNode[] {
    return this.view.filter((node) => node.role === 'master' && node.slots.length > 0);
  }

  /** Every node's address, for `new Cluster(startupNodes)`: ioredis finds the rest itself. */
  get startupNodes(): Endpoint[] {
    return this.members.map((member) => member.announced);
  }

  masterForSlot(slot: number): ClusterNode {
    const master = this.masters.find((node) => owns(node, slot));
    if (!master) throw new Error(`No master serves slot ${slot}`);
    return master;
  }

  /** The master serving `key`, by the same CRC16 hashing (hash tags included) as Redis and ioredis. */
  masterForKey(key: string): ClusterNode {
    return this.masterForSlot(calculateSlot(key));
  }

  replicasOf(master: ClusterNode): ClusterNode[] {
    return this.view.filter((node) => node.masterId === master.id);
  }

  /** The node's own port, bypassing its proxy in proxy mode. */
  directEndpoint(node: Endpoint): Endpoint {
    return this.member(node).server.endpoint;
  }

  async start(): Promise<void> {
    if (this.members.length > 0) throw new Error('RedisClusterServer is already started');
    try {
      const total = this.masterCount * (1 + this.replicasPerMaster);
      for (let i = 0; i < total; i++) this.members.push(await this.createMember());
      await Promise.all(this.members.map((member) => member.server.start()));
      await this.create();
      await this.waitUntilConverged('the new cluster to agree on every slot', READY_TIMEOUT_MS);
      await this.waitForReplicasInSync();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** Rereads `nodes` from a running node. */
  async refresh(): Promise<readonly ClusterNode[]> {
    this.view = await this.viewFrom(this.runningMembers()[0]);
    return this.view;
  }

  /** SIGKILLs a node, leaving the cluster to notice. */
  async kill(node: Endpoint): Promise<void> {
    await this.member(node).server.kill();
  }

  /**
   * Starts a killed node again on its ports and `nodes.conf`, without its data (nothing is
   * persisted). A master that was replaced meanwhile rejoins as a replica of its successor.
   */
  async restart(node: Endpoint): Promise<void> {
    await this.member(node).server.restart();
    await this.waitUntilConverged(`${describeEndpoint(node)} to rejoin`, READY_TIMEOUT_MS);
    await this.waitForReplicasInSync();
  }

  /**
   * Resolves once every live node agrees that a replica of `master` (killed by the
   * caller) serves its slots and the cluster is ok again; returns that replica.
   */
  async waitForFailover(master: ClusterNode, timeoutMs = FAILOVER_TIMEOUT_MS): Promise<ClusterNode> {
    if (this.replicasOf(master).length === 0) throw new Error(`${describeEndpoint(master)} has no replica to fail over to`);
    const [firstSlot] = master.slots[0];
    await this.waitUntilConverged(
      `a replica of ${describeEndpoint(master)} to take over its slots`,
      timeoutMs,
      (view) => view.some((node) => node.role === 'master' && node.id !== master.id && owns(node, firstSlot)),
    );
    return this.masterForSlot(firstSlot);
  }

  /** SIGKILLs `master` and waits for its replica to take over; returns the new master. */
  async killMaster(master: ClusterNode): Promise<ClusterNode> {
    await this.kill(master);
    return this.waitForFailover(master);
  }

  /**
   * A manual failover (`CLUSTER FAILOVER`, no data lost): `node` is the replica to promote,
   * or a master whose first replica is promoted. Returns the new master.
   */
  async failover(node: ClusterNode): Promise<ClusterNode> {
    const replica = node.role === 'replica' ? node : this.replicasOf(node)[0];
    if (!replica) throw new Error(`${describeEndpoint(node)} has no replica to fail over to`);
    await withRedis(this.directEndpoint(replica), (client) => client.call('CLUSTER', 'FAILOVER'));
    await this.waitUntilConverged(
      `${describeEndpoint(replica)} to become a master`,
      FAILOVER_TIMEOUT_MS,
      (view) => view.some((candidate) => candidate.id === replica.id && candidate.role === 'master'),
    );
    await this.waitForReplicasInSync();
    return this.view.find((candidate) => candidate.id === replica.id)!;
  }

  /**
   * Proxy mode: holds back what `master` sends its replicas (the stream stays open, its
   * data in flight) while clients keep being served through the same proxy. Returns the
   * held connections.
   */
  async pauseReplication(master: ClusterNode): Promise<readonly ProxiedConnection[]> {
    const { server, proxy } = this.member(master);
    if (!proxy) throw new Error('RedisClusterServer was not created with replicationProxy: true');
    // The master lists each replica link at the proxy's side of the connection carrying it.
    const list = String(await withRedis(server.endpoint, (client) => client.call('CLIENT', 'LIST', 'TYPE', 'replica')));
    const ports = new Set([...list.matchAll(/\baddr=[^ ]*:(\d+)/g)].map((match) => Number(match[1])));
    const links = proxy.connections.filter((connection) => ports.has(connection.upstreamLocalPort ?? -1));
    if (links.length === 0) throw new Error(`No replica of ${describeEndpoint(master)} replicates through its proxy`);
    for (const link of links) link.pause('from-target');
    this.pausedLinks.set(master.id, [...(this.pausedLinks.get(master.id) ?? []), ...links]);
    return links;
  }

  /** Delivers what `pauseReplication(master)` held, in order. */
  resumeReplication(master: ClusterNode): void {
    for (const link of this.pausedLinks.get(master.id) ?? []) link.resume('from-target');
    this.pausedLinks.delete(master.id);
  }

  /** Stops every node (and proxy) and deletes their directories; safe to call twice. */
  async stop(): Promise<void> {
    const results = await Promise.allSettled(
      this.members.flatMap((member) => [member.server.stop(), ...(member.proxy ? [member.proxy.stop()] : [])]),
    );
    this.members.length = 0;
    this.pausedLinks.clear();
    this.view = [];
    const failure = results.find((result) => result.status === 'rejected');
    if (failure) throw failure.reason;
  }

  private async createMember(): Promise<Member> {
    let proxy: TcpProxy | undefined;
    if (this.withProxies) {
      // Started first: the node must announce the proxy's port from its first gossip on.
      proxy = new TcpProxy(() => server.endpoint);
      await proxy.start();
    }
    const server = new RedisServer({
      clusterBus: true,
      args: [
        '--cluster-enabled', 'yes',
        // Relative to --dir, the node's temp directory; restart() finds it there again.
        '--cluster-config-file', 'nodes.conf',
        '--cluster-node-timeout', String(this.nodeTimeoutMs),
        // A replica takes over however long its link was down: tests kill masters on purpose.
        '--cluster-replica-validity-factor', '0',
        '--repl-diskless-sync-delay', '0',
        ...(proxy ? ['--cluster-announce-port', String(proxy.port)] : []),
      ],
    });
    return new Member(server, proxy);
  }

  private async create(): Promise<void> {
    const redisCli = requireBinary('redis-cli', 'redis-tools');
    const args = [
      '--cluster', 'create',
      ...this.members.map((member) => describeEndpoint(member.server.endpoint)),
      '--cluster-replicas', String(this.replicasPerMaster),
      '--cluster-yes',
    ];
    try {
      await execFileAsync(redisCli, args, { timeout: READY_TIMEOUT_MS });
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      throw new Error(`redis-cli --cluster create failed: ${String(error)}\n${stdout}${stderr}`);
    }
  }

  /**
   * Polls until every running node reports cluster_state:ok with all slots served, all
   * of them describe the cluster identically (gossip has settled, so ioredis gets the
   * same slot map whichever node it asks) and `settled` accepts that view.
   */
  private async waitUntilConverged(
    what: string,
    timeoutMs: number,
    settled: (view: ClusterNode[]) => boolean = () => true,
  ): Promise<void> {
    this.view = await pollUntil(
      what,
      async () => {
        const members = this.runningMembers();
        const healthy = await Promise.all(members.map((member) => this.isHealthy(member)));
        if (!healthy.every(Boolean)) return undefined;
        const views = await Promise.all(members.map((member) => this.viewFrom(member)));
        const signatures = new Set(views.map(signature));
        return signatures.size === 1 && settled(views[0]) ? views[0] : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
  }

  private async isHealthy(member: Member): Promise<boolean> {
    const info = parseInfo(String(await withRedis(member.server.endpoint, (client) => client.call('CLUSTER', 'INFO'))));
    return (
      info.cluster_state === 'ok' &&
      info.cluster_slots_assigned === String(CLUSTER_SLOTS) &&
      info.cluster_slots_ok === String(CLUSTER_SLOTS) &&
      info.cluster_known_nodes === String(this.members.length)
    );
  }

  private async waitForReplicasInSync(): Promise<void> {
    const replicas = this.view.filter((node) => node.role === 'replica' && !node.failed);
    await pollUntil(
      'every replica to finish its sync',
      async () => {
        const links = await Promise.all(
          replicas.map(async (node) => (await redisInfo(this.directEndpoint(node), 'replication')).master_link_status),
        );
        return links.every((status) => status === 'up') ? true : undefined;
      },
      { timeoutMs: READY_TIMEOUT_MS },
    );
  }

  private async viewFrom(member: Member): Promise<ClusterNode[]> {
    const text = await withRedis(member.server.endpoint, (client) => client.call('CLUSTER', 'NODES') as Promise<string>);
    return parseClusterNodes(text);
  }

  private runningMembers(): Member[] {
    const running = this.members.filter((member) => member.server.isRunning);
    if (running.length === 0) throw new Error('No node of the cluster is running');
    return running;
  }

  private member(node: Endpoint): Member {
    const member = this.members.find((candidate) => candidate.answersAt(node));
    if (!member) throw new Error(`${describeEndpoint(node)} is not a node of this cluster`);
    return member;
  }
}

function owns(node: ClusterNode, slot: number): boolean {
  return node.slots.some(([from, to]) => slot >= from && slot <= to);
}

/** What every node must agree on; leaves out what is each node's own (myself, pfail, timings). */
function signature(view: ClusterNode[]): string {
  return view
    .map((node) => [node.id, node.role, node.masterId ?? '-', node.failed, JSON.stringify(node.slots)].join(' '))
    .sort()
    .join('\n');
}

/** `<id> <ip:port@bus[,hostname]> <flags> <master|-> <ping> <pong> <epoch> <link> <slot>...` */
export function parseClusterNodes(text: string): ClusterNode[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id, address, flags, master, , , , , ...slotFields] = line.trim().split(' ');
      const [hostPort] = address.split('@');
      const colon = hostPort.lastIndexOf(':');
      const flagList = flags.split(',');
      return {
        id,
        host: hostPort.slice(0, colon),
        port: Number(hostPort.slice(colon + 1)),
        role: flagList.includes('slave') ? 'replica' : 'master',
        failed: flagList.includes('fail'),
        ...(master !== '-' ? { masterId: master } : {}),
        // Migrating / importing markers look like [slot->-id]; only served ranges count.
        slots: slotFields
          .filter((field) => !field.startsWith('['))
          .map((field) => {
            const [from, to = from] = field.split('-').map(Number);
            return [from, to] as [number, number];
          }),
      } satisfies ClusterNode;
    });
}
