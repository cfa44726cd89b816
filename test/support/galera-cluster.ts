import { execFile } from 'node:child_process';
import { cp, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { LOOPBACK } from './endpoint.js';
import { requireBinary } from './find-binary.js';
import { freePort } from './free-port.js';
import { ManagedServer } from './managed-server.js';
import { TEST_DATABASE } from './mariadb-server.js';
import { pollUntil } from './poll.js';

const execFileAsync = promisify(execFile);
const PROVIDER = '/usr/lib/galera/libgalera_smm.so';
const USER_OPTIONS = process.getuid?.() === 0 ? ['--user=root'] : [];
const SYNCED_TIMEOUT_MS = 30_000;

/** The ports one node listens on besides its SQL port. */
interface NodePorts {
  gcomm: number;
  ist: number;
  sst: number;
}

/**
 * One MariaDB Galera node. The first node of a cluster makes the system tables and bootstraps
 * the cluster; the others start from a copy of its (cleanly stopped) data directory, so that they
 * join with the same cluster state and need no state transfer at all.
 */
class GaleraNode extends ManagedServer {
  protected readonly name: string;
  /** Only the first start of the first node forms a new cluster; every later start joins. */
  bootstrap = false;
  /** After a kill: the position recovered from InnoDB, so the node asks for the writes it missed (IST). */
  startPosition: string | undefined;
  dataDir?: string;

  constructor(
    readonly index: number,
    readonly ports: NodePorts,
    private readonly peers: () => NodePorts[],
    private readonly seed: () => string | undefined,
    private readonly fastEviction: boolean
  ) {
    super();
    this.name = `Galera-${index + 1}`;
  }

  get url(): string {
    return `mysql://root@${LOOPBACK}:${this.port}/${TEST_DATABASE}`;
  }

  protected async initialize(dir: string): Promise<void> {
    this.dataDir = join(dir, 'data');
    await mkdir(join(dir, 'tmp'));
    const seed = this.seed();
    if (seed) {
      // gvwstate.dat names the node's own id in the group: each node must pick its own.
      await cp(seed, this.dataDir, { recursive: true, filter: (source) => !source.endsWith('gvwstate.dat') });
    } else {
      const args = ['--no-defaults', `--datadir=${this.dataDir}`, `--tmpdir=${join(dir, 'tmp')}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve', ...USER_OPTIONS];
      try {
        await execFileAsync(requireBinary('mariadb-install-db', 'mariadb-server'), args);
      } catch (error) {
        const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
        throw new Error(`mariadb-install-db failed: ${String(error)}\n${stdout}${stderr}`);
      }
    }
    // As root, the rsync state transfer's daemon runs as `nobody`: a root-only directory would stop
    // a rejoining node (after a kill) from receiving a full transfer. These directories are throwaway.
    await openToAll(dir);
  }

  protected command(dir: string, port: number) {
    const { gcomm, ist, sst } = this.ports;
    const provider = [
      `base_port=${gcomm}`,
      `ist.recv_addr=${LOOPBACK}:${ist}`,
      // Node-loss specs: a silent node is evicted after 3 s (default 5 s; inactive 15 s), so a paused
      // or killed node stalls the survivors' commits for ~3 s, within the 5 s statement time.
      // Measured: 1 s (keepalive 0.3 s) made the nodes of this loaded 2-CPU machine suspect each
      // other and lose the primary component; 3 s did not.
      ...(this.fastEviction ? ['evs.suspect_timeout=PT3S', 'evs.inactive_timeout=PT5S'] : []),
      'gcache.size=64M'
    ].join(';');
    return {
      binary: requireBinary('mariadbd', 'mariadb-server'),
      args: [
        '--no-defaults',
        `--datadir=${join(dir, 'data')}`,
        `--tmpdir=${join(dir, 'tmp')}`,
        `--socket=${join(dir, 'mariadbd.sock')}`,
        `--pid-file=${join(dir, 'mariadbd.pid')}`,
        `--port=${port}`,
        `--bind-address=${LOOPBACK}`,
        '--skip-name-resolve',
        `--server-id=${this.index + 1}`,
        '--character-set-server=utf8mb4',
        '--collation-server=utf8mb4_unicode_ci',
        '--innodb-buffer-pool-size=32M',
        '--innodb-log-file-size=8M',
        '--innodb-flush-log-at-trx-commit=2',
        '--binlog-format=ROW',
        '--innodb-autoinc-lock-mode=2',
        '--wsrep-on=ON',
        `--wsrep-provider=${PROVIDER}`,
        '--wsrep-cluster-name=ezsession-test',
        `--wsrep-cluster-address=gcomm://${this.peers().map((peer) => `${LOOPBACK}:${peer.gcomm}`).join(',')}`,
        `--wsrep-node-address=${LOOPBACK}:${gcomm}`,
        `--wsrep-node-name=node${this.index + 1}`,
        `--wsrep-sst-receive-address=${LOOPBACK}:${sst}`,
        '--wsrep-sst-method=rsync',
        `--wsrep-provider-options=${provider}`,
        ...(this.bootstrap ? ['--wsrep-new-cluster'] : []),
        ...(this.startPosition ? [`--wsrep-start-position=${this.startPosition}`] : []),
        ...USER_OPTIONS
      ]
    };
  }

  /**
   * What `galera_recovery` does before a systemd start: `mariadbd --wsrep-recover` reads the last
   * committed position from InnoDB (a killed node's grastate.dat says -1), so that the node can
   * join with an incremental transfer from a donor's write-set cache instead of a full copy.
   */
  async recoverPosition(dir: string): Promise<void> {
    const { binary, args } = this.command(dir, this.port);
    const kept = args.filter((arg) => !arg.startsWith('--wsrep-start-position') && !arg.startsWith('--port'));
    const { stderr } = await execFileAsync(binary, [...kept, '--wsrep-recover', '--skip-networking', `--log-error=${join(dir, 'recover.log')}`]).catch((error: { stderr?: string }) => ({ stderr: error.stderr ?? '' }));
    const log = await readFile(join(dir, 'recover.log'), 'utf8').catch(() => stderr);
    const found = /Recovered position:\s*([0-9a-f-]+:-?\d+)/.exec(log);
    this.startPosition = found && !found[1].endsWith(':-1') ? found[1] : undefined;
  }

  protected async probe(port: number, dir: string): Promise<void> {
    const connection = await createConnection({ host: LOOPBACK, port, user: 'root', connectTimeout: 1_000 });
    try {
      const [[{ datadir }]] = await connection.query<RowDataPacket[]>('SELECT @@datadir AS datadir');
      if (datadir !== `${join(dir, 'data')}/`) throw new Error(`port ${port} is served by another MariaDB (${datadir})`);
      const [rows] = await connection.query<RowDataPacket[]>(`SHOW STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_local_state_comment')`);
      const status = Object.fromEntries(rows.map((row) => [row.Variable_name, row.Value]));
      if (status.wsrep_ready !== 'ON' || status.wsrep_local_state_comment !== 'Synced') throw new Error(`not synced yet (${JSON.stringify(status)})`);
      if (this.bootstrap) await connection.query(`CREATE DATABASE IF NOT EXISTS \`${TEST_DATABASE}\``);
    } finally {
      await connection.end();
    }
  }
}

/**
 * A throwaway three-node MariaDB Galera cluster on 127.0.0.1, each node with its own SQL, group
 * (gcomm), IST and SST port, and the empty `ezsession_test` database on all. Node 1 bootstraps the
 * cluster, is stopped cleanly, and its data directory seeds the other two: all three are up in
 * about 15 s with no state transfer. `nodes[i]` can be paused, killed and restarted like any
 * ManagedServer; a restarted node joins the others again.
 */
export class GaleraCluster {
  readonly nodes: GaleraNode[] = [];

  /** `fastEviction` (default true): the lowered evs timeouts above; false keeps Galera's defaults. */
  constructor(private readonly options: { fastEviction?: boolean } = {}) {}

  /** If the spec process ends without stop() (a crash, process.exit), the nodes must not outlive it. */
  private readonly killAll = () => {
    for (const node of this.nodes) node.killNow();
  };

  async start(): Promise<void> {
    process.once('exit', this.killAll);
    try {
      const ports: NodePorts[] = [];
      for (let i = 0; i < 3; i++) ports.push({ gcomm: await freePort(), ist: await freePort(), sst: await freePort() });
      let seed: string | undefined;
      const first = new GaleraNode(0, ports[0], () => ports, () => undefined, this.options.fastEviction ?? true);
      this.nodes.push(first, ...[1, 2].map((i) => new GaleraNode(i, ports[i], () => ports, () => seed, this.options.fastEviction ?? true)));
      first.bootstrap = true;
      await first.start();
      await first.halt();
      // The seed is copied while node 1 is stopped: a copy of a running server's files is not a state.
      seed = `${first.dataDir}-seed`;
      await cp(first.dataDir!, seed, { recursive: true });
      await first.start();
      first.bootstrap = false;
      // Joining one at a time: two joiners at once may pick each other as donor while neither is synced.
      for (const node of this.nodes.slice(1)) await node.start();
      await this.waitForSize(3);
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** The SQL URL of node `i` (0-based). */
  url(i: number): string {
    return this.nodes[i].url;
  }

  /** Waits until every running node sees a primary component of `size` nodes and is synced. */
  async waitForSize(size: number, timeoutMs = SYNCED_TIMEOUT_MS): Promise<void> {
    await pollUntil(
      `a synced Galera cluster of ${size} nodes`,
      async () => {
        for (const node of this.nodes.filter((n) => n.isRunning)) {
          const status = await this.status(node.index);
          if (Number(status.wsrep_cluster_size) !== size || status.wsrep_cluster_status !== 'Primary' || status.wsrep_local_state_comment !== 'Synced') return undefined;
        }
        return true;
      },
      { timeoutMs, intervalMs: 100 }
    );
  }

  /** A few wsrep status variables of node `i`. */
  async status(i: number): Promise<Record<string, string>> {
    const connection = await createConnection({ host: LOOPBACK, port: this.nodes[i].port, user: 'root', connectTimeout: 1_000 });
    try {
      const [rows] = await connection.query<RowDataPacket[]>(
        `SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_cluster_status', 'wsrep_local_state_comment', 'wsrep_ready')`
      );
      return Object.fromEntries(rows.map((row) => [row.Variable_name, String(row.Value)]));
    } finally {
      await connection.end();
    }
  }

  /** Restarts a killed or halted node: it joins the running ones (by IST or, after a kill, a state transfer). */
  async rejoin(i: number): Promise<void> {
    const node = this.nodes[i];
    node.bootstrap = false;
    if (node.isRunning) await node.halt();
    // A node killed mid-write needs a full state transfer, whose rsync daemon (as `nobody`) writes
    // into the data directory: the files the server made since the last start must be open to it too.
    await openToAll(dirname(node.dataDir!));
    await node.recoverPosition(dirname(node.dataDir!));
    await node.start();
  }

  /**
   * SIGKILL, then the directories go: the data is thrown away anyway, and a graceful shutdown of a
   * node whose peers are gone (or that lost the primary component) can wait far longer than a
   * spec's after() hook, which would leave the servers running after the spec process exits.
   */
  async stop(): Promise<void> {
    for (const node of this.nodes) {
      node.resume();
      await node.kill().catch(() => undefined);
    }
    for (const node of this.nodes) await node.stop().catch(() => undefined);
    this.nodes.length = 0;
    process.off('exit', this.killAll);
  }
}

async function openToAll(path: string): Promise<void> {
  await execFileAsync('chmod', ['-R', 'a+rwX', path]);
}
