import { Redis } from 'ioredis';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { RedisMonitor } from './redis-monitor.js';

/** Raw server counters: Redis `calls` per command, MySQL `Questions` and `Com_*` values. */
export interface Snapshot {
  redis: Record<string, number>;
  mysql: Record<string, number>;
}

/** What the servers' own counters say happened between two snapshots. */
export interface ServerUsage {
  /**
   * `byCommand`: commands Redis executed (INFO commandstats), keyed by lower-case name (`get`,
   * `client|setinfo`, ...), the ones a Lua script ran included; `total` is their sum.
   */
  redis: { total: number; byCommand: Record<string, number> };
  /**
   * `queries` is MariaDB's `Questions`: one per statement a client sends (COM_QUIT
   * counts, COM_PING does not). `byCommand` holds the `Com_*` deltas without the
   * prefix; it can add up to more than `queries` because a prepared statement
   * execution bumps both `stmt_execute` and e.g. `select`.
   */
  mysql: { queries: number; byCommand: Record<string, number> };
}

export interface StorageUsage extends ServerUsage {
  /**
   * `sent`, besides the executed counts: the commands clients sent, as Redis's MONITOR reports
   * them (a script's own calls left out), i.e. the round trips.
   */
  redis: ServerUsage['redis'] & { sent: Record<string, number> };
}

export interface ConnectOptions {
  /**
   * Watch Redis with MONITOR, which `measure()` needs for `sent` (default true). MONITOR makes
   * Redis copy every command to this client, which slows it down: a load test that only takes
   * snapshots connects without it.
   */
  monitor?: boolean;
}

export interface Measurement<T> extends StorageUsage {
  result: T;
}

// Every snapshot runs exactly one INFO / SHOW GLOBAL STATUS of its own, and the
// difference between two snapshots contains exactly one of them: Redis records a
// command after it ran, so INFO does not see itself, while MariaDB's status does
// include the statement that reads it. The self-check spec pins this down.
const OWN_REDIS_COMMAND = 'info';
const OWN_MYSQL_COMMAND = 'show_status';

const COMMANDSTAT = /^cmdstat_(\S+?):calls=(\d+)(?:.*?,rejected_calls=(\d+))?/;

/**
 * Counts storage operations as seen by the servers themselves, across all clients.
 * Measurements must not overlap, and nothing else may use the servers meanwhile.
 */
export class StorageCounters {
  /** Every instance not closed yet: `closeAll()` in an `after` hook closes what a failed test left open. */
  private static readonly open = new Set<StorageCounters>();

  private measuring = false;

  private readonly monitored: Array<{ command: string; source: string; mark?: string }> = [];
  private fences = 0;
  /** Connections of Redis Sentinels watching this server (their PINGs, INFOs and hellos are nobody's requests). */
  private sentinels = new Set<string>();
  private monitor?: RedisMonitor;

  private constructor(
    private readonly mysql: Connection,
    private readonly redis: Redis,
  ) {
    StorageCounters.open.add(this);
  }

  static async connect(mysqlUrl: string, redisUrl: string, { monitor = true }: ConnectOptions = {}): Promise<StorageCounters> {
    // One connection that never retries: a reconnect would change the source its fences are told
    // apart by, and a client left retrying a stopped server keeps the spec process alive.
    const redis = new Redis(redisUrl, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    redis.on('error', () => undefined); // failures surface through the commands
    const [mysql, connected] = await Promise.allSettled([createConnection(mysqlUrl), redis.connect()]);
    if (mysql.status === 'rejected' || connected.status === 'rejected') {
      redis.disconnect();
      if (mysql.status === 'fulfilled') mysql.value.destroy();
      throw mysql.status === 'rejected' ? mysql.reason : (connected as PromiseRejectedResult).reason;
    }
    const counters = new StorageCounters(mysql.value, redis);
    try {
      if (monitor) counters.monitor = await RedisMonitor.start(redisUrl, (entry) => counters.record(entry));
    } catch (error) {
      await counters.close();
      throw error;
    }
    return counters;
  }

  /** Closes every instance still open; for `after` hooks, so that a test that threw midway leaves no connection behind. */
  static async closeAll(): Promise<void> {
    await Promise.all([...StorageCounters.open].map((counters) => counters.close()));
  }

  private record({ command, args, source }: { command: string; args: string[]; source: string }): void {
    this.monitored.push({ command, source, mark: command === 'echo' ? args[1] : undefined });
  }

  async snapshot(): Promise<Snapshot> {
    const [redis, mysql] = await Promise.all([this.redisCounters(), this.mysqlCounters()]);
    return { redis, mysql };
  }

  async measure<T>(fn: () => Promise<T>): Promise<Measurement<T>> {
    if (this.measuring) throw new Error('StorageCounters.measure() calls must not overlap');
    // Counts without `sent` would pass for "nothing sent": refuse rather than guess.
    if (!this.monitor) throw new Error('StorageCounters.measure() needs MONITOR: connect without { monitor: false }');
    this.measuring = true;
    try {
      this.sentinels = await this.sentinelSources();
      const start = await this.fence();
      const before = await this.snapshot();
      const result = await fn();
      const after = await this.snapshot();
      const end = await this.fence();
      const { redis, mysql } = StorageCounters.usage(before, after);
      return { result, redis: { ...redis, sent: this.sentBetween(start, end) }, mysql };
    } finally {
      this.measuring = false;
    }
  }

  /**
   * MONITOR reports commands as they run, asynchronously: an ECHO of this connection's, once seen
   * in the stream, marks that every command run before it has been reported. Returns its position.
   */
  private async fence(): Promise<number> {
    const mark = `storage-counters-fence-${++this.fences}`;
    await this.redis.echo(mark);
    for (let waited = 0; waited < 5_000; waited += 5) {
      const at = this.monitored.findIndex((entry) => entry.mark === mark);
      if (at >= 0) return at;
      const broken = this.monitor?.error;
      if (broken) throw new Error(`Redis MONITOR stopped before the fence: ${broken.message}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error('Redis MONITOR did not report the fence within 5 s');
  }

  /**
   * How many `command`s each client other than this one has sent since `connect`, by its address;
   * for a test that must go on until every instance it drives has reached this server.
   */
  sentSoFarBySource(command: string): Map<string, number> {
    const counts = new Map<string, number>();
    for (const entry of this.monitored) {
      if (entry.command !== command || this.isOwnOrServers(entry.source)) continue;
      counts.set(entry.source, (counts.get(entry.source) ?? 0) + 1);
    }
    return counts;
  }

  private isOwnOrServers(source: string): boolean {
    return source === 'lua' || source === this.ownSource || this.sentinels.has(source);
  }

  /** Commands clients other than this one sent between two fences, by name; commands a script ran are not sent by anyone. */
  private sentBetween(start: number, end: number): Record<string, number> {
    const sent: Record<string, number> = {};
    for (const { command, source } of this.monitored.slice(start + 1, end)) {
      if (this.isOwnOrServers(source)) continue;
      sent[command] = (sent[command] ?? 0) + 1;
    }
    return sent;
  }

  /** Addresses of the Sentinels' connections to this server: Sentinel names them `sentinel-<id>-cmd` / `-pubsub`. */
  private async sentinelSources(): Promise<Set<string>> {
    const list = String(await this.redis.call('CLIENT', 'LIST'));
    const sources = new Set<string>();
    for (const line of list.split(/\r?\n/)) {
      if (/ name=sentinel-/.test(line)) sources.add(/(?:^| )addr=(\S+)/.exec(line)?.[1] ?? '');
    }
    sources.delete('');
    return sources;
  }

  private get ownSource(): string {
    const stream = (this.redis as unknown as { stream: { localAddress: string; localPort: number } }).stream;
    return `${stream.localAddress}:${stream.localPort}`;
  }

  /** Usage between two consecutive snapshots of this instance, minus the snapshots' own traffic. */
  static usage(before: Snapshot, after: Snapshot): ServerUsage {
    const redis = delta(before.redis, after.redis);
    subtractOne(redis, OWN_REDIS_COMMAND);
    const total = Object.values(redis).reduce((sum, n) => sum + n, 0);

    const { Questions: questions = 0, ...com } = delta(before.mysql, after.mysql);
    const byCommand: Record<string, number> = {};
    for (const [name, n] of Object.entries(com)) byCommand[name.replace(/^Com_/, '')] = n;
    subtractOne(byCommand, OWN_MYSQL_COMMAND);

    return { redis: { total, byCommand: redis }, mysql: { queries: questions - 1, byCommand } };
  }

  /** Safe to call twice, and on connections to a server that is gone (no goodbye is waited for). */
  async close(): Promise<void> {
    if (!StorageCounters.open.delete(this)) return;
    this.monitor?.close();
    this.redis.disconnect();
    this.mysql.destroy();
  }

  private async redisCounters(): Promise<Record<string, number>> {
    const info = await this.redis.info('commandstats');
    const counters: Record<string, number> = {};
    for (const line of info.split(/\r?\n/)) {
      const match = COMMANDSTAT.exec(line);
      // Rejected calls (wrong arity, OOM, ...) never reach `calls` but still hit the server.
      if (match) counters[match[1].toLowerCase()] = Number(match[2]) + Number(match[3] ?? 0);
    }
    return counters;
  }

  private async mysqlCounters(): Promise<Record<string, number>> {
    const [rows] = await this.mysql.query<RowDataPacket[]>(
      "SHOW GLOBAL STATUS WHERE Variable_name = 'Questions' OR Variable_name LIKE 'Com\\_%'",
    );
    return Object.fromEntries(rows.map((row) => [row.Variable_name as string, Number(row.Value)]));
  }
}

/** Non-zero differences, keyed like the inputs. */
function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const changes: Record<string, number> = {};
  for (const [name, value] of Object.entries(after)) {
    const change = value - (before[name] ?? 0);
    if (change !== 0) changes[name] = change;
  }
  return changes;
}

function subtractOne(counts: Record<string, number>, name: string): void {
  const left = (counts[name] ?? 0) - 1;
  if (left === 0) delete counts[name];
  else counts[name] = left;
}
