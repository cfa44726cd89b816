import type { DataSource, QueryRunner } from 'typeorm';
import type { StoreDialect } from '../options/resolved-options.js';

/** What a statement gave back: the rows of a SELECT, the rows a write changed. */
export interface SqlOutcome {
  rows: Array<Record<string, unknown>>;
  affected: number;
}

/** One connection taken from the app's pool; the statements of a session lock all run on one. */
export interface SqlConnection {
  /**
   * Runs one statement. A server that has not answered within `timeoutMs` costs the connection:
   * it is destroyed (a named lock it held is freed with it) and the call rejects with `silent()`.
   */
  run(sql: string, params: unknown[], timeoutMs: number, silent: () => Error): Promise<SqlOutcome>;
  release(): void;
  /** Ends the connection instead of returning it (it may still hold a named lock). */
  destroy(): void;
}

export interface SqlPool {
  /**
   * A connection within `waitMs`, else the rejection `late()`: the pool has no acquire timeout of its
   * own, and a connection that arrives after the caller gave up goes straight back.
   */
  connect(waitMs: number, late: () => Error): Promise<SqlConnection>;
}

/** The pool of the DataSource the sessions table lives in, speaking to it the cheapest way its driver allows. */
export function sqlPoolOf(dataSource: DataSource, dialect: StoreDialect): SqlPool {
  return dialect === 'mysql' ? new MysqlPool(dataSource) : new TypeormPool(dataSource);
}

interface Mysql2Connection {
  execute(sql: string, values: unknown[], callback: (error: Error | null, result: unknown) => void): void;
  release(): void;
  destroy(): void;
}

/**
 * mysql2 directly, with server-side prepared statements (`execute`): no client-side escaping of
 * the session document, and none of the per-query logging and result mapping of a QueryRunner.
 * Connections come from TypeORM's driver, from the primary when the DataSource has replicas.
 */
class MysqlPool implements SqlPool {
  constructor(private readonly dataSource: DataSource) {}

  async connect(waitMs: number, late: () => Error): Promise<SqlConnection> {
    const driver = this.dataSource.driver as unknown as { obtainMasterConnection(): Promise<Mysql2Connection> };
    const connection = await withinDeadline(driver.obtainMasterConnection(), waitMs, late, (arrived) => arrived.release());
    return new MysqlConnection(connection);
  }
}

class MysqlConnection implements SqlConnection {
  private destroyed = false;

  constructor(private readonly connection: Mysql2Connection) {}

  run(sql: string, params: unknown[], timeoutMs: number, silent: () => Error): Promise<SqlOutcome> {
    return new Promise((resolve, reject) => {
      // mysql2's own query timeout leaves the statement running on the connection: the next
      // statement would wait behind it. Destroying the connection ends it on the server too.
      const timer = setTimeout(() => {
        this.destroy();
        reject(silent());
      }, timeoutMs);
      this.connection.execute(sql, params, (error, result) => {
        clearTimeout(timer);
        if (error) return reject(error);
        resolve(Array.isArray(result) ? { rows: result as SqlOutcome['rows'], affected: 0 } : { rows: [], affected: Number((result as { affectedRows?: number }).affectedRows ?? 0) });
      });
    });
  }

  release(): void {
    if (!this.destroyed) this.connection.release();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.connection.destroy();
  }
}

/** The embedded store (sql.js, SQLite): one process, statements through a QueryRunner. */
class TypeormPool implements SqlPool {
  constructor(private readonly dataSource: DataSource) {}

  async connect(waitMs: number, late: () => Error): Promise<SqlConnection> {
    const runner = this.dataSource.createQueryRunner();
    await withinDeadline(runner.connect(), waitMs, late, () => runner.release());
    return new TypeormConnection(runner);
  }
}

class TypeormConnection implements SqlConnection {
  constructor(private readonly runner: QueryRunner) {}

  async run(sql: string, params: unknown[]): Promise<SqlOutcome> {
    const result = await this.runner.query(sql, params, true);
    return { rows: Array.isArray(result.records) ? result.records : [], affected: Number(result.affected ?? 0) };
  }

  release(): void {
    if (!this.runner.isReleased) void this.runner.release().catch(() => undefined);
  }

  destroy(): void {
    this.release();
  }
}

async function withinDeadline<T>(pending: Promise<T>, waitMs: number, late: () => Error, giveBack: (arrived: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, waitMs))));
  try {
    const first = await Promise.race([pending, timedOut]);
    if (first === TIMED_OUT) {
      pending.then(giveBack, () => undefined);
      throw late();
    }
    return first as T;
  } finally {
    clearTimeout(timer);
  }
}

const TIMED_OUT = Symbol('timed out');
