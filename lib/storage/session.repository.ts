import { createHash } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { DataSource, QueryRunner } from 'typeorm';
import { SessionLockTimeoutError, SessionStoreUnavailableError } from '../ez-session.errors.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { KeyedMutex } from './keyed-mutex.js';
import { createTableStatements, revokedTableName } from './session-table.sql.js';

/** One row of the sessions table, with the document still serialized. */
export interface SessionRow {
  data: string;
  flash: string | null;
  createdAt: number;
  expiresAt: number;
  userId?: string | null;
}

/** What a writer sees under the lock: the live row, and whether the session id was revoked. */
export interface LockedRead {
  row: SessionRow | undefined;
  revoked: boolean;
}

/** A session's lock, held: every call runs on the one connection that holds it. */
export interface SessionLock {
  /** The row and the tombstone, in one round trip. */
  read(): Promise<LockedRead>;
  insert(row: SessionRow): Promise<void>;
  /** Inserts the row under another, freshly generated id (regeneration); no one else can know that id yet. */
  copyTo(sid: string, row: SessionRow): Promise<void>;
  update(row: SessionRow): Promise<void>;
  delete(): Promise<void>;
  /** Deletes the row and records the tombstone, until `until` (ms). */
  revoke(until: number): Promise<void>;
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
  private readonly revoked: string;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: ResolvedOptions
  ) {
    this.table = dataSource.driver.escape(options.tableName);
    this.revoked = dataSource.driver.escape(revokedTableName(options.tableName));
  }

  async createTable(): Promise<void> {
    for (const statement of createTableStatements(this.options.dialect, this.options.tableName)) {
      await this.dataSource.query(statement);
    }
  }

  /** The live row of `sid`, or `undefined` when there is none or it has expired. */
  async find(sid: string): Promise<SessionRow | undefined> {
    return liveRow(await this.pooled(this.selectSql, [sid]));
  }

  /**
   * Extends a live row's expiry without the lock: the condition makes it monotonic, so it can
   * never shorten a session or revive a deleted one.
   */
  async touch(sid: string, expiresAt: number): Promise<void> {
    await this.pooled(`UPDATE ${this.table} SET expires_at = ? WHERE sid = ? AND expires_at < ? AND expires_at > ?`, [expiresAt, sid, expiresAt, Date.now()]);
  }

  /** Deletes up to `limit` expired rows and tombstones; returns how many went. */
  async deleteExpired(limit: number): Promise<number> {
    const now = Date.now();
    let deleted = 0;
    for (const table of [this.table, this.revoked]) {
      const sql =
        this.options.dialect === 'mysql'
          ? `DELETE FROM ${table} WHERE expires_at <= ? LIMIT ${limit}`
          : `DELETE FROM ${table} WHERE sid IN (SELECT sid FROM ${table} WHERE expires_at <= ? LIMIT ${limit})`;
      deleted += await this.affected(sql, [now]);
    }
    return deleted;
  }

  /** Tombstones still in force, revoked at or after `since` (ms). */
  async revokedSince(since: number): Promise<Array<{ sid: string; until: number }>> {
    const rows = await this.storeCall(() =>
      this.dataSource.query(`SELECT sid, expires_at FROM ${this.revoked} WHERE revoked_at >= ? AND expires_at > ?`, [since, Date.now()])
    );
    return (rows as Array<Record<string, unknown>>).map((row) => ({ sid: String(row.sid), until: Number(row.expires_at) }));
  }

  /** Live stored sessions of one user, newest activity first (one indexed query). */
  async findByUser(userId: string): Promise<Array<{ sid: string; createdAt: number; updatedAt: number; expiresAt: number }>> {
    const rows = await this.storeCall(() =>
      this.dataSource.query(`SELECT sid, created_at, updated_at, expires_at FROM ${this.table} WHERE user_id = ? AND expires_at > ? ORDER BY updated_at DESC`, [
        userId,
        Date.now()
      ])
    );
    return (rows as Array<Record<string, unknown>>).map((row) => ({
      sid: String(row.sid),
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
      expiresAt: Number(row.expires_at)
    }));
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
      await this.connectBefore(runner, deadline);
      if (name) await this.getLock(runner, name, deadline);
    } catch (error) {
      released = true;
      // Before a late connection arrives this only marks the runner released; connectBefore returns that connection.
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

  /**
   * The pool has no acquire timeout of its own: the wait for a free connection counts against the
   * lock timeout, and a connection that arrives after the request gave up goes straight back.
   */
  private async connectBefore(
    runner: QueryRunner,
    deadline: number,
    late: () => Error = () => new SessionLockTimeoutError(this.options.lockTimeout)
  ): Promise<void> {
    const connecting = this.storeCall(() => runner.connect());
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))));
    try {
      if ((await Promise.race([connecting, timedOut])) === 'timeout') {
        connecting.then(() => runner.release(), () => undefined);
        throw late();
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private async getLock(runner: QueryRunner, name: string, deadline: number): Promise<void> {
    const waitSeconds = Math.max(0, (deadline - Date.now()) / 1000);
    // The server answers GET_LOCK within waitSeconds; one that does not answer at all must not hold the request.
    const [{ locked }] = await this.timed(runner, waitSeconds * 1000 + this.statementMs, () => runner.query('SELECT GET_LOCK(?, ?) AS locked', [name, waitSeconds]));
    // 0 is a timeout, NULL an error (e.g. the wait was killed); drivers may return either as text.
    if (Number(locked) !== 1) throw new SessionLockTimeoutError(this.options.lockTimeout);
  }

  private async releaseLock(runner: QueryRunner, name: string): Promise<void> {
    let released: unknown;
    try {
      [{ released }] = await this.timed(runner, this.statementMs, () => runner.query('SELECT RELEASE_LOCK(?) AS released', [name]));
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
      read: async () => {
        const rows = await this.timed(runner, this.statementMs, () => runner.query(this.lockedReadSql, [sid, sid, Date.now()]));
        const tombstone = (rows as Array<Record<string, unknown>>).some((row) => Number(row.revoked) === 1);
        return { row: liveRow(rows.filter((row: Record<string, unknown>) => Number(row.revoked) === 0)), revoked: tombstone };
      },
      insert: (row) => this.insertRow(runner, sid, row),
      copyTo: (newSid, row) => this.insertRow(runner, newSid, row),
      update: async (row) => {
        await this.timed(runner, this.statementMs, () =>
          runner.query(`UPDATE ${this.table} SET data = ?, flash = ?, user_id = ?, updated_at = ?, expires_at = ? WHERE sid = ?`, [
            row.data,
            row.flash,
            row.userId ?? null,
            Date.now(),
            row.expiresAt,
            sid
          ])
        );
      },
      delete: async () => {
        await this.timed(runner, this.statementMs, () => runner.query(`DELETE FROM ${this.table} WHERE sid = ?`, [sid]));
      },
      revoke: async (until) => {
        await this.timed(runner, this.statementMs, () => runner.query(`DELETE FROM ${this.table} WHERE sid = ?`, [sid]));
        const upsert =
          this.options.dialect === 'mysql'
            ? `INSERT INTO ${this.revoked} (sid, revoked_at, expires_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE expires_at = GREATEST(expires_at, VALUES(expires_at))`
            : `INSERT INTO ${this.revoked} (sid, revoked_at, expires_at) VALUES (?, ?, ?) ON CONFLICT (sid) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`;
        await this.timed(runner, this.statementMs, () => runner.query(upsert, [sid, Date.now(), until]));
      }
    };
  }

  private async insertRow(runner: QueryRunner, sid: string, row: SessionRow): Promise<void> {
    await this.timed(runner, this.statementMs, () =>
      runner.query(
        `INSERT INTO ${this.table} (sid, data, flash, user_id, created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [sid, row.data, row.flash, row.userId ?? null, row.createdAt, Date.now(), row.expiresAt]
      )
    );
  }

  private get selectSql(): string {
    return `SELECT data, flash, user_id, created_at, expires_at FROM ${this.table} WHERE sid = ?`;
  }

  // The row and its tombstone in one round trip, so a write keeps to lock, read, write, unlock.
  private get lockedReadSql(): string {
    return `SELECT data, flash, user_id, created_at, expires_at, 0 AS revoked FROM ${this.table} WHERE sid = ?
UNION ALL SELECT NULL, NULL, NULL, NULL, expires_at, 1 FROM ${this.revoked} WHERE sid = ? AND expires_at > ?`;
  }

  private async affected(sql: string, parameters: unknown[]): Promise<number> {
    const runner = this.dataSource.createQueryRunner();
    try {
      const result = await this.storeCall(() => runner.query(sql, parameters, true));
      return Number(result.affected ?? 0);
    } finally {
      await runner.release();
    }
  }

  /** How long one statement on a session row may take: a server that does not answer is unavailable. */
  private get statementMs(): number {
    return Math.max(1000, this.options.lockTimeout * 1000);
  }

  /**
   * One request-path statement on a pooled connection, with the wait for the connection and the
   * statement itself both bounded: a saturated pool or a silent server gives a 503, never a hang.
   */
  private async pooled(sql: string, parameters: unknown[]): Promise<any> {
    const runner = this.dataSource.createQueryRunner();
    try {
      const within = this.options.lockTimeout;
      await this.connectBefore(runner, Date.now() + within * 1000, () => new SessionStoreUnavailableError(new Error(`no database connection was free within ${within}s`)));
      return await this.timed(runner, this.statementMs, () => runner.query(sql, parameters));
    } finally {
      if (!runner.isReleased) await runner.release().catch(() => undefined);
    }
  }

  /** Runs `call` on `runner`; if the server has not answered within `ms`, the connection is destroyed and the request gets a 503. */
  private async timed<T>(runner: QueryRunner, ms: number, call: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const connection = (runner as unknown as { databaseConnection?: { destroy?: () => void } }).databaseConnection;
        connection?.destroy?.();
        reject(new SessionStoreUnavailableError(new Error(`the database did not answer within ${Math.round(ms)} ms`)));
      }, ms);
    });
    try {
      return await Promise.race([this.storeCall(call), silent]);
    } finally {
      clearTimeout(timer);
    }
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
    expiresAt,
    userId: row.user_id === null || row.user_id === undefined ? null : String(row.user_id)
  };
}
