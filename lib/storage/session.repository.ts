import { createHash } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { DataSource, QueryRunner } from 'typeorm';
import { SessionLockTimeoutError, SessionStoreUnavailableError } from '../ez-session.errors.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { KeyedMutex } from './keyed-mutex.js';
import { createTableStatements } from './session-table.sql.js';

/** One row of the sessions table, with the document still serialized. */
export interface SessionRow {
  data: string;
  flash: string | null;
  createdAt: number;
  expiresAt: number;
}

/** A session's lock, held: every call runs on the one connection that holds it. */
export interface SessionLock {
  read(): Promise<SessionRow | undefined>;
  insert(row: SessionRow): Promise<void>;
  update(row: SessionRow): Promise<void>;
  delete(): Promise<void>;
  /** Frees the lock and the connection; safe to call more than once. */
  release(): Promise<void>;
}

/**
 * The durable store. Reads outside a lock use the pool (one SELECT); every write runs inside
 * `withLock`, on one QueryRunner that took MySQL's named lock for the session, so the lock and the
 * statements it protects can never land on different pooled connections.
 */
export class SessionRepository {
  private readonly logger = new Logger('EzSession');
  private readonly queue = new KeyedMutex();
  private readonly table: string;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: ResolvedOptions
  ) {
    this.table = dataSource.driver.escape(options.tableName);
  }

  async createTable(): Promise<void> {
    for (const statement of createTableStatements(this.options.dialect, this.options.tableName)) {
      await this.dataSource.query(statement);
    }
  }

  /** The live row of `sid`, or `undefined` when there is none or it has expired. */
  async find(sid: string): Promise<SessionRow | undefined> {
    const rows = await this.storeCall(() => this.dataSource.query(this.selectSql, [sid]));
    return liveRow(rows);
  }

  async countActive(): Promise<number> {
    const [row] = await this.storeCall(() => this.dataSource.query(`SELECT COUNT(*) AS n FROM ${this.table} WHERE expires_at > ?`, [Date.now()]));
    return Number(row.n);
  }

  /**
   * Takes the session's lock: first a place in this process's queue, then (MySQL) GET_LOCK on a
   * dedicated connection, both within `lockTimeout` seconds in total.
   */
  async lock(sid: string): Promise<SessionLock> {
    const deadline = Date.now() + this.options.lockTimeout * 1000;
    const leaveQueue = await this.queue.acquire(sid, this.options.lockTimeout * 1000);
    if (!leaveQueue) throw new SessionLockTimeoutError(this.options.lockTimeout);
    const runner = this.dataSource.createQueryRunner();
    const name = this.options.dialect === 'mysql' ? lockName(sid) : undefined;
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      try {
        if (name) await this.releaseLock(runner, name);
      } finally {
        if (!runner.isReleased) await runner.release().catch(() => undefined);
        leaveQueue();
      }
    };
    try {
      await this.storeCall(() => runner.connect());
      if (name) await this.getLock(runner, name, deadline);
    } catch (error) {
      released = true;
      if (!runner.isReleased) await runner.release().catch(() => undefined);
      leaveQueue();
      throw error;
    }
    return this.heldLock(runner, sid, release);
  }

  async withLock<T>(sid: string, work: (lock: SessionLock) => Promise<T>): Promise<T> {
    const lock = await this.lock(sid);
    try {
      return await work(lock);
    } finally {
      await lock.release();
    }
  }

  private async getLock(runner: QueryRunner, name: string, deadline: number): Promise<void> {
    const waitSeconds = Math.max(0, (deadline - Date.now()) / 1000);
    const [{ locked }] = await this.storeCall(() => runner.query('SELECT GET_LOCK(?, ?) AS locked', [name, waitSeconds]));
    // 0 is a timeout, NULL an error (e.g. the wait was killed); drivers may return either as text.
    if (Number(locked) !== 1) throw new SessionLockTimeoutError(this.options.lockTimeout);
  }

  private async releaseLock(runner: QueryRunner, name: string): Promise<void> {
    let released: unknown;
    try {
      [{ released }] = await runner.query('SELECT RELEASE_LOCK(?) AS released', [name]);
    } catch (error) {
      released = error;
    }
    if (Number(released) === 1) return;
    // The connection may still hold the lock: never hand it back to the pool, end it so the server frees the lock.
    this.logger.error(`Could not release session lock ${name} (${released instanceof Error ? released.message : String(released)}); closing its connection`);
    const connection = (runner as unknown as { databaseConnection?: { destroy?: () => void } }).databaseConnection;
    connection?.destroy?.();
  }

  private heldLock(runner: QueryRunner, sid: string, release: () => Promise<void>): SessionLock {
    return {
      release,
      read: async () => liveRow(await this.storeCall(() => runner.query(this.selectSql, [sid]))),
      insert: async (row) => {
        await this.storeCall(() =>
          runner.query(
            `INSERT INTO ${this.table} (sid, data, flash, created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
            [sid, row.data, row.flash, row.createdAt, Date.now(), row.expiresAt]
          )
        );
      },
      update: async (row) => {
        await this.storeCall(() =>
          runner.query(`UPDATE ${this.table} SET data = ?, flash = ?, updated_at = ?, expires_at = ? WHERE sid = ?`, [
            row.data,
            row.flash,
            Date.now(),
            row.expiresAt,
            sid
          ])
        );
      },
      delete: async () => {
        await this.storeCall(() => runner.query(`DELETE FROM ${this.table} WHERE sid = ?`, [sid]));
      }
    };
  }

  private get selectSql(): string {
    return `SELECT data, flash, created_at, expires_at FROM ${this.table} WHERE sid = ?`;
  }

  /** Store failures become a 503 that names the cause; lock timeouts pass through as they are. */
  private async storeCall<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof SessionLockTimeoutError) throw error;
      throw new SessionStoreUnavailableError(error);
    }
  }
}

/** `ezs:` + SHA-256 of the sid: 64 ASCII characters, within MySQL's limit, case never folds two sids together. */
export function lockName(sid: string): string {
  return `ezs:${createHash('sha256').update(sid).digest('hex').slice(0, 60)}`;
}

function liveRow(rows: Array<Record<string, unknown>>): SessionRow | undefined {
  const row = rows[0];
  if (!row) return undefined;
  const expiresAt = Number(row.expires_at);
  if (expiresAt <= Date.now()) return undefined;
  return {
    data: String(row.data),
    flash: row.flash === null || row.flash === undefined ? null : String(row.flash),
    createdAt: Number(row.created_at),
    expiresAt
  };
}
