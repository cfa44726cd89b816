import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { LOOPBACK } from './endpoint.js';
import { MariaDbServer, type InnoDbSizes } from './mariadb-server.js';
import { pollUntil } from './poll.js';

const READY_TIMEOUT_MS = 30_000;
const CATCH_UP_TIMEOUT_MS = 10_000;

export interface ReplicaStatus {
  ioRunning: string;
  sqlRunning: string;
  lastError: string;
}

export interface ReplicaStatements<T> {
  result: T;
  /** Statements clients sent the replica meanwhile; what replication applied is not among them. */
  statements: number;
}

/**
 * A throwaway MariaDB primary (binary log on) and one replica following it by GTID, on
 * 127.0.0.1. Both have the empty `ezsession_test` database; `primary` and `replica` can
 * be killed and restarted like any MariaDbServer (the replica reconnects within a second).
 */
export class MariaDbReplication {
  readonly primary: MariaDbServer;
  readonly replica: MariaDbServer;
  private monitors: { primary?: Promise<Connection>; replica?: Promise<Connection> } = {};
  // Statements sent by this object's own replica connection, so counts can leave them out.
  private ownReplicaStatements = 0;
  private counting = false;

  constructor(sizes: InnoDbSizes = {}) {
    this.primary = new MariaDbServer({ ...sizes, serverId: 1, binaryLog: true });
    this.replica = new MariaDbServer({ ...sizes, serverId: 2 });
  }

  get primaryUrl(): string {
    return this.primary.url;
  }

  get replicaUrl(): string {
    return this.replica.url;
  }

  async start(): Promise<void> {
    try {
      await Promise.all([this.primary.start(), this.replica.start()]);
      await this.onReplica(
        'CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, ' +
          // Retrying every second (not every minute) lets a test restart the primary quickly.
          'MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1',
        [LOOPBACK, this.primary.port, 'root', ''],
      );
      await this.onReplica('START SLAVE');
      await pollUntil(
        'both replication threads of the replica to run',
        async () => {
          const { ioRunning, sqlRunning, lastError } = await this.replicaStatus();
          if (lastError) throw new Error(lastError);
          return ioRunning === 'Yes' && sqlRunning === 'Yes' ? true : undefined;
        },
        { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100 },
      );
      await this.waitForReplicaCatchUp();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** `SHOW SLAVE STATUS` in brief; `lastError` is empty while replication works. */
  async replicaStatus(): Promise<ReplicaStatus> {
    const [row] = await this.onReplica('SHOW SLAVE STATUS');
    if (!row) return { ioRunning: 'No', sqlRunning: 'No', lastError: 'replication is not configured' };
    return {
      ioRunning: row.Slave_IO_Running,
      sqlRunning: row.Slave_SQL_Running,
      lastError: [row.Last_IO_Error, row.Last_SQL_Error].filter(Boolean).join('; '),
    };
  }

  /** Resolves once the replica has applied everything the primary had written when called. */
  async waitForReplicaCatchUp(timeoutMs = CATCH_UP_TIMEOUT_MS): Promise<void> {
    const [{ position }] = await this.onPrimary('SELECT @@gtid_binlog_pos AS position');
    const [{ reached }] = await this.onReplica('SELECT MASTER_GTID_WAIT(?, ?) AS reached', [
      position,
      timeoutMs / 1000,
    ]);
    if (Number(reached) !== 0) {
      const { ioRunning, sqlRunning, lastError } = await this.replicaStatus();
      throw new Error(
        `Replica did not reach GTID ${position} within ${timeoutMs} ms ` +
          `(IO ${ioRunning}, SQL ${sqlRunning}${lastError ? `, ${lastError}` : ''})`,
      );
    }
  }

  /**
   * Counts the statements clients send the replica while `fn` runs, from its `Questions`
   * status: statements the replication SQL thread applies are not counted there (their
   * `Com_*` counters do rise, so those cannot tell the two apart), nor are this object's
   * own (e.g. `waitForReplicaCatchUp()`). Nothing else may use the replica meanwhile.
   */
  async replicaClientStatements<T>(fn: () => Promise<T>): Promise<ReplicaStatements<T>> {
    if (this.counting) throw new Error('replicaClientStatements() calls must not overlap');
    this.counting = true;
    try {
      const before = await this.replicaQuestions();
      const result = await fn();
      const after = await this.replicaQuestions();
      return { result, statements: after.questions - before.questions - (after.own - before.own) };
    } finally {
      this.counting = false;
    }
  }

  async stop(): Promise<void> {
    // destroy(), not end(): no COM_QUIT, and nothing to wait for from a server that is gone.
    const monitors = Object.values(this.monitors);
    this.monitors = {};
    await Promise.all(monitors.map((opening) => opening.then((connection) => connection.destroy(), () => {})));
    const results = await Promise.allSettled([this.replica.stop(), this.primary.stop()]);
    const failure = results.find((result) => result.status === 'rejected');
    if (failure) throw failure.reason;
  }

  private async replicaQuestions(): Promise<{ questions: number; own: number }> {
    const [{ Value }] = await this.onReplica("SHOW GLOBAL STATUS LIKE 'Questions'");
    // Questions includes the SHOW that reads it, and so does the own count by then.
    return { questions: Number(Value), own: this.ownReplicaStatements };
  }

  private onPrimary(sql: string, values: unknown[] = []): Promise<RowDataPacket[]> {
    return this.query('primary', sql, values);
  }

  private onReplica(sql: string, values: unknown[] = []): Promise<RowDataPacket[]> {
    this.ownReplicaStatements++;
    return this.query('replica', sql, values);
  }

  /** On one connection per server, opened again after the server was killed or restarted. */
  private async query(which: 'primary' | 'replica', sql: string, values: unknown[]): Promise<RowDataPacket[]> {
    const opening = (this.monitors[which] ??= createConnection({ host: LOOPBACK, port: this[which].port, user: 'root' }));
    const forget = () => {
      if (this.monitors[which] === opening) this.monitors[which] = undefined;
    };
    let connection: Connection;
    try {
      connection = await opening;
    } catch (error) {
      forget();
      throw error;
    }
    try {
      const [rows] = await connection.query<RowDataPacket[]>(sql, values);
      return rows;
    } catch (error) {
      if ((error as { fatal?: boolean }).fatal) {
        forget();
        connection.destroy();
      }
      throw error;
    }
  }
}
