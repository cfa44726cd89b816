import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { DataSource } from 'typeorm';
import type { EzSessionClock } from '../interfaces/ez-session-options.interface.js';
import { EzSessionConfigError, SessionLockTimeoutError, SessionStoreUnavailableError, SessionWriteConflictError } from '../ez-session.errors.js';
import { RedisSessionLease, type HeldLease } from '../locking/redis-session-lease.js';
import { withoutStatementSettings } from '../observability/instruments.js';
import type { SessionTelemetry } from '../observability/session-telemetry.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { fitsUserIdColumn } from '../session/user-id.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { DeviceDetails } from '../users/device-details.js';
import { StoreErrorLog } from './store-error-log.js';
import { columnsQuery, createTableStatements, pendingMigrations, revokedTableName, type ColumnInfo } from './session-table.sql.js';
import { sqlPoolOf, type SqlConnection, type SqlOutcome, type SqlPool } from './sql-connection.js';

/** One live row of the sessions table, with the document still serialized. */
export interface SessionRow {
  data: string;
  flash: string | null;
  createdAt: number;
  expiresAt: number;
  /** Moves on with every write: a write names the version it read, and loses if another came first. */
  version: number;
  userId: string | null;
}

/** What a write puts into the row. */
export interface RowWrite {
  data: string;
  flash: string;
  createdAt: number;
  expiresAt: number;
  userId: string | null;
  /** The device that created the session; recorded by the INSERT only (a first write, a regeneration). */
  device?: DeviceDetails;
}

/** A live stored session of a user, as `listForUser` shows it (device details empty on rows from before 0.3). */
export interface UserSessionRow extends DeviceDetails {
  sid: string;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
}

/** A first write: it made the row, someone else had made it first, or the id was revoked meanwhile. */
export type InsertOutcome = 'inserted' | 'exists' | 'revoked';

/** Where a write's statement runs: any pooled connection, or the one holding the session's lock. */
export type Via = SessionLock | undefined;

/** A session's named lock, held on one connection, with the row as it was read once the lock was had. */
export interface SessionLock {
  readonly sid: string;
  readonly row: SessionRow | undefined;
  /** @internal the connection every statement under this lock runs on */
  readonly connection: SqlConnection;
  /** @internal the Redis lease, when the lock is one (`lockVia: 'redis'`): its writes are fenced by the row version */
  readonly lease?: HeldLease;
  /** Frees the lock and the connection; safe to call more than once. */
  release(): Promise<void>;
}

/**
 * The durable store, written in one statement per write: a row carries a `version`, and an UPDATE
 * names the version it read (0 rows changed: someone wrote first, or the session ended), a first
 * INSERT refuses a revoked id. No lock is needed for that. The named lock (MySQL's GET_LOCK, on one
 * pinned connection) is for `@Session({ lock: true })`, which holds it across the handler, and for
 * regenerate / destroy / revoke.
 */
export class SessionRepository {
  private readonly logger = new Logger('EzSession');
  private readonly errors = new StoreErrorLog(this.logger);
  private readonly queue = new KeyedMutex();
  private readonly pool: SqlPool;
  private readonly table: string;
  private readonly revoked: string;
  private readonly sql: ReturnType<SessionRepository['statements']>;
  /** MariaDB takes the lock and reads the row in one statement (verified there); elsewhere they are two. */
  private lockAndReadInOne = false;
  /** The server is a node of a multi-primary Galera / Percona XtraDB cluster (`wsrep_on`). */
  private galera = false;
  /** Set at boot when the session lock is a lease in Redis rather than MySQL's GET_LOCK. */
  private lease: RedisSessionLease | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: ResolvedOptions,
    private readonly clock: EzSessionClock,
    private readonly telemetry: SessionTelemetry,
    private readonly redis?: Redis | Cluster
  ) {
    this.pool = sqlPoolOf(dataSource, options.dialect);
    this.table = dataSource.driver.escape(options.tableName);
    this.revoked = dataSource.driver.escape(revokedTableName(options.tableName));
    this.sql = this.statements();
  }

  /**
   * At boot: creates the tables when asked to, adds the `version` column to a table an earlier
   * release made (or, with `createTable: false`, refuses to boot with the statement to run), and
   * learns which server this is.
   */
  async prepare(): Promise<void> {
    if (this.options.dialect === 'mysql') {
      const [{ version }] = await this.dataSource.query('SELECT VERSION() AS version');
      this.lockAndReadInOne = /mariadb/i.test(String(version));
      await this.prepareForCluster();
    }
    this.telemetry.storeSystem = this.options.dialect === 'sqlite' ? 'sqlite' : this.lockAndReadInOne ? 'mariadb' : 'mysql';
    const columns = await this.columns();
    const pending = columns.size === 0 ? [] : pendingMigrations(this.options.dialect, columns);
    const { dialect, tableName } = this.options;
    if (this.options.createTable) {
      for (const statement of createTableStatements(dialect, tableName)) await this.dataSource.query(statement);
      for (const migration of pending) for (const statement of migration.statements(dialect, tableName, columns)) await this.dataSource.query(statement);
      return;
    }
    if (columns.size === 0) {
      throw new EzSessionConfigError('createTable', `is false and the table ${tableName} does not exist: create it (README, Storage) or set createTable: true`);
    }
    if (pending.length > 0) {
      throw new EzSessionConfigError(
        'createTable',
        `is false and the table ${tableName} ${pending.map((migration) => migration.problem).join(', and ')}. Run: ${pending.flatMap((migration) => migration.statements(dialect, tableName, columns)).join('; ')}`
      );
    }
  }

  /** How the lock is taken, the one in force: 'redis' (a lease) or 'mysql' (GET_LOCK); 'memory' for the embedded store. */
  get lockKind(): 'redis' | 'mysql' | 'memory' {
    return this.lease ? 'redis' : this.options.dialect === 'mysql' ? 'mysql' : 'memory';
  }

  /**
   * A multi-primary node (Galera, PXC) needs two things a single primary does not: a lock that
   * spans the nodes (GET_LOCK is node-local there: two nodes grant the same name at once), and
   * session reads that wait until the node has applied every write the cluster committed before
   * them (`wsrep_sync_wait`, per statement, so nothing else of the app pays for it).
   */
  private async prepareForCluster(): Promise<void> {
    const rows = (await this.dataSource.query(`SHOW VARIABLES LIKE 'wsrep_on'`)) as Array<{ Value?: string }>;
    this.galera = String(rows[0]?.Value ?? 'OFF').toUpperCase() === 'ON';
    const via = this.options.lockVia;
    if (via === 'redis' || (via === 'auto' && this.galera && this.redis)) {
      if (!this.redis) throw new EzSessionConfigError('lockVia', "is 'redis', but no Redis client is available");
      this.lease = new RedisSessionLease(this.redis, this.options.keyPrefix, this.options.lockTimeout);
    } else if (this.galera) {
      this.logger.warn(
        via === 'mysql'
          ? "The database is a Galera cluster node and lockVia is 'mysql': GET_LOCK excludes only on one node, so @Session({ lock: true }) is exclusive only while every instance uses this same node"
          : "The database is a Galera cluster node and no redis option is set: session locks use GET_LOCK, which excludes only on one node. That holds for this one instance (without Redis, run one); configure redis to run several"
      );
    }
    if (this.galera) {
      this.sql.select = `SET STATEMENT wsrep_sync_wait = 1 FOR ${this.sql.select}`;
      await this.warnOfSlowEviction();
    }
  }

  /**
   * Every commit in the cluster waits while a node that went silent (killed, paused, cut off) has
   * not been evicted yet, `evs.suspect_timeout` after it went quiet. Longer than a statement may
   * take, that wait answers 503 on every instance, not only those using the lost node.
   */
  private async warnOfSlowEviction(): Promise<void> {
    const rows = (await this.dataSource.query(`SHOW VARIABLES LIKE 'wsrep_provider_options'`)) as Array<{ Value?: string }>;
    const found = /evs\.suspect_timeout\s*=\s*PT([\d.]+)S/i.exec(String(rows[0]?.Value ?? ''));
    const suspectMs = found ? Number(found[1]) * 1000 : undefined;
    if (suspectMs !== undefined && suspectMs >= this.statementMs) {
      this.logger.warn(
        `Galera evicts a silent node after evs.suspect_timeout = ${suspectMs / 1000}s, and every commit in the cluster waits that long when a node is lost: ` +
          `longer than a session statement may take (${this.statementMs / 1000}s, lockTimeout), so writes answer 503 meanwhile. Lower evs.suspect_timeout in wsrep_provider_options, or raise lockTimeout`
      );
    }
  }

  /** The live row of `sid`, or `undefined` when there is none or it has expired (one SELECT). */
  async find(sid: string, via?: Via): Promise<SessionRow | undefined> {
    return this.live((await this.run(this.sql.select, [sid], via, sid)).rows[0]);
  }

  /** Writes `next` over the row if it is still at `version` and live; `false` when it is not (written meanwhile, or ended). */
  async update(sid: string, version: number, next: RowWrite, via?: Via): Promise<boolean> {
    const now = this.clock.now();
    const { affected } = await this.run(this.sql.update, [next.data, next.flash, this.userIdParam(next.userId), now, next.expiresAt, sid, version, now], via, sid);
    return affected === 1;
  }

  /**
   * Creates the row at version 1. `checkTombstone`: the id came from a client, so it may have been
   * revoked meanwhile (on another instance); a freshly minted id cannot have been.
   */
  async insert(sid: string, next: RowWrite, checkTombstone: boolean, via?: Via): Promise<InsertOutcome> {
    const now = this.clock.now();
    const device = next.device;
    const values = [sid, next.data, next.flash, this.userIdParam(next.userId), next.createdAt, now, next.expiresAt, device?.userAgent ?? null, device?.ip ?? null, device?.device ?? null];
    try {
      const { affected } = checkTombstone ? await this.run(this.sql.insertUnlessRevoked, [...values, sid, now], via, sid) : await this.run(this.sql.insert, values, via, sid);
      return affected === 1 ? 'inserted' : 'revoked';
    } catch (error) {
      if (isDuplicateKey(error) || isDuplicateKey((error as { cause?: unknown }).cause)) return 'exists';
      throw error;
    }
  }

  /** Deletes the row if it is still at `version` (all data removed); `false` when it moved on or ended. */
  async delete(sid: string, version: number, via?: Via): Promise<boolean> {
    return (await this.run(this.sql.deleteAtVersion, [sid, version], via, sid)).affected === 1;
  }

  /**
   * Extends a live row's expiry without the lock and without a new version (so it never makes a
   * concurrent write retry): the condition makes it monotonic, so it can never shorten a session or
   * revive an ended one.
   */
  async touch(sid: string, expiresAt: number): Promise<void> {
    const now = this.clock.now();
    // updated_at is the session's last activity as listForUser shows it: moved by this write, which happens anyway.
    await this.run(this.sql.touch, [expiresAt, now, sid, expiresAt, now], undefined, sid);
  }

  /**
   * Ends the id for good: the tombstone first, then the row, so that at no moment is the row gone
   * while the id could still be created again (a first write checks the tombstone), and a write
   * racing it can only land in the row that is about to go.
   */
  async revoke(lock: SessionLock, until: number, options: { keepRow?: boolean } = {}): Promise<void> {
    await this.run(this.sql.tombstone, [lock.sid, this.clock.now(), until], lock);
    // Regeneration deletes the row itself, once it has been copied.
    if (!options.keepRow) await this.run(this.sql.deleteRow, [lock.sid], lock);
  }

  /**
   * Takes the session's lock, within `lockTimeout` seconds in total: first a place in this
   * process's queue (requests of one instance wait here rather than each holding a pooled
   * connection in GET_LOCK), then MySQL's named lock on one connection; then reads the row.
   */
  async lock(sid: string): Promise<SessionLock> {
    const timeoutMs = this.options.lockTimeout * 1000;
    // A wait, measured on the monotonic clock: the session clock may be a test's, standing still.
    const deadline = performance.now() + timeoutMs;
    const leaveQueue = await this.queue.acquire(sid, timeoutMs);
    if (!leaveQueue) throw new SessionLockTimeoutError(this.options.lockTimeout);
    let connection: SqlConnection | undefined;
    let lease: HeldLease | undefined;
    try {
      if (this.lease) lease = await this.lease.acquire(sid, deadline, this.options.lockTimeout);
      connection = await this.connect(deadline - performance.now(), () => new SessionLockTimeoutError(this.options.lockTimeout), sid);
      const row = this.options.dialect === 'mysql' && !lease ? await this.getLockAndRead(connection, sid, deadline) : await this.readOn(connection, sid);
      this.telemetry.record('ezsession.lock.wait', (performance.now() - deadline + timeoutMs) / 1000);
      return this.heldLock(sid, row, connection, leaveQueue, lease);
    } catch (error) {
      connection?.release();
      await lease?.release();
      leaveQueue();
      throw error;
    }
  }

  async withLock<T>(sid: string, work: (lock: SessionLock) => Promise<T>): Promise<T> {
    const lock = await this.lock(sid);
    try {
      return await work(lock);
    } finally {
      await lock.release();
    }
  }

  /** Deletes up to `limit` expired rows and tombstones; returns how many went. */
  async deleteExpired(limit: number): Promise<number> {
    const now = this.clock.now();
    let deleted = 0;
    for (const table of [this.table, this.revoked]) {
      const sql =
        this.options.dialect === 'mysql'
          ? `DELETE FROM ${table} WHERE expires_at <= ? LIMIT ${limit}`
          : `DELETE FROM ${table} WHERE sid IN (SELECT sid FROM ${table} WHERE expires_at <= ? LIMIT ${limit})`;
      deleted += (await this.run(sql, [now])).affected;
    }
    return deleted;
  }

  /** Tombstones still in force, revoked at or after `since` (ms). */
  async revokedSince(since: number): Promise<Array<{ sid: string; until: number; revokedAt: number }>> {
    const { rows } = await this.run(`SELECT sid, revoked_at, expires_at FROM ${this.revoked} WHERE revoked_at >= ? AND expires_at > ?`, [since, this.clock.now()]);
    return rows.map((row) => ({ sid: String(row.sid), until: Number(row.expires_at), revokedAt: Number(row.revoked_at) }));
  }

  /**
   * A user's cut-off (and the session it spares), beside the tombstones: `revoked_at` is the
   * cut-off (ms), which a later call only moves forward; one statement, so both rows land together.
   */
  async revokeUser(key: string, cutoffMs: number, until: number, spared?: string): Promise<void> {
    const rows = spared === undefined ? [[key, cutoffMs, until]] : [[spared, cutoffMs, until], [key, cutoffMs, until]];
    const values = rows.map(() => '(?, ?, ?)').join(', ');
    const sql =
      this.options.dialect === 'mysql'
        ? `INSERT INTO ${this.revoked} (sid, revoked_at, expires_at) VALUES ${values} ON DUPLICATE KEY UPDATE revoked_at = GREATEST(revoked_at, VALUES(revoked_at)), expires_at = GREATEST(expires_at, VALUES(expires_at))`
        : `INSERT INTO ${this.revoked} (sid, revoked_at, expires_at) VALUES ${values} ON CONFLICT (sid) DO UPDATE SET revoked_at = MAX(revoked_at, excluded.revoked_at), expires_at = MAX(expires_at, excluded.expires_at)`;
    await this.run(sql, rows.flat());
  }

  /** Live stored sessions of one user, newest activity first (one indexed query). */
  async findByUser(userId: string): Promise<UserSessionRow[]> {
    // No row can hold a longer id: it was refused when written.
    if (!fitsUserIdColumn(userId)) return [];
    const { rows } = await this.run(
      `SELECT sid, created_at, updated_at, expires_at, user_agent, ip, device FROM ${this.table} WHERE user_id = ? AND expires_at > ? ORDER BY updated_at DESC, created_at DESC`,
      [this.userIdParam(userId), this.clock.now()]
    );
    return rows.map((row) => ({
      sid: String(row.sid),
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
      expiresAt: Number(row.expires_at),
      userAgent: textOrNull(row.user_agent),
      ip: textOrNull(row.ip),
      device: textOrNull(row.device)
    }));
  }

  /**
   * Ends an id without its session lock (evicting another session at a login): the tombstone
   * first, then the row, as `revoke` does, so a write racing it can only land in the row that goes
   * or be refused by the tombstone. No lock: the evicted session's holder may be waiting for the
   * user's lock this runs under.
   */
  async revokeUnlocked(sid: string, until: number): Promise<void> {
    await this.run(this.sql.tombstone, [sid, this.clock.now(), until]);
    await this.run(this.sql.deleteRow, [sid]);
  }

  /**
   * Runs `work` while holding the user's lock, the serialization point of the per-user session cap
   * across instances: this process's queue, then (MySQL) a named lock per user on one connection,
   * held until `work` has committed its writes. The embedded store is one process: the queue is the lock.
   */
  async withUserLock<T>(userId: string, work: () => Promise<T>): Promise<T> {
    const timeoutMs = this.options.lockTimeout * 1000;
    const deadline = performance.now() + timeoutMs;
    const leaveQueue = await this.queue.acquire(`user\0${userId}`, timeoutMs);
    if (!leaveQueue) throw new SessionLockTimeoutError(this.options.lockTimeout);
    let connection: SqlConnection | undefined;
    try {
      if (this.options.dialect !== 'mysql') return await work();
      const name = userLockName(userId);
      if (this.lease) {
        // Multi-primary: GET_LOCK is node-local there, so logins through two nodes would not queue; the lease spans them.
        const lease = await this.lease.acquire(name, deadline, this.options.lockTimeout);
        try {
          return await work();
        } finally {
          await lease.release();
        }
      }
      connection = await this.connect(deadline - performance.now(), () => new SessionLockTimeoutError(this.options.lockTimeout));
      const waitSeconds = Math.max(0, (deadline - performance.now()) / 1000);
      const { rows } = await this.on(connection, waitSeconds * 1000 + this.statementMs, 'SELECT GET_LOCK(?, ?) AS locked', [name, waitSeconds]);
      if (Number(rows[0]?.locked) !== 1) throw new SessionLockTimeoutError(this.options.lockTimeout);
      try {
        return await work();
      } finally {
        await this.releaseLock(connection, name);
      }
    } finally {
      connection?.release();
      leaveQueue();
    }
  }

  async countActive(): Promise<number> {
    const { rows } = await this.run(`SELECT COUNT(*) AS n FROM ${this.table} WHERE expires_at > ?`, [this.clock.now()]);
    return Number(rows[0].n);
  }

  private async columns(): Promise<Map<string, ColumnInfo>> {
    const { sql, params } = columnsQuery(this.options.dialect, this.options.tableName);
    const rows = (await this.dataSource.query(sql, params)) as Array<Record<string, unknown>>;
    const field = (row: Record<string, unknown>, name: string) => String(row[name] ?? row[name.toUpperCase()] ?? '').toLowerCase();
    return new Map(rows.map((row) => [field(row, 'name'), { name: field(row, 'name'), type: field(row, 'type') }]));
  }

  /** A user id as the column takes it: its UTF-8 bytes for MySQL (VARBINARY), text for SQLite (whose TEXT compares bytes). */
  private userIdParam(userId: string | null): string | Buffer | null {
    return userId === null || this.options.dialect !== 'mysql' ? userId : Buffer.from(userId, 'utf8');
  }

  /**
   * GET_LOCK waits at most until the deadline; a server that does not answer at all costs the
   * connection (and with it the lock) instead of holding the request.
   */
  private async getLockAndRead(connection: SqlConnection, sid: string, deadline: number): Promise<SessionRow | undefined> {
    const waitSeconds = Math.max(0, (deadline - performance.now()) / 1000);
    const name = lockName(sid);
    const within = waitSeconds * 1000 + this.statementMs;
    if (this.lockAndReadInOne) {
      const { rows } = await this.on(connection, within, this.sql.lockAndSelect, [name, waitSeconds, sid], sid);
      if (Number(rows[0]?.locked) !== 1) throw new SessionLockTimeoutError(this.options.lockTimeout);
      return this.live(rows[0]);
    }
    const { rows } = await this.on(connection, within, 'SELECT GET_LOCK(?, ?) AS locked', [name, waitSeconds], sid);
    // 0 is a timeout, NULL an error (e.g. the wait was killed); drivers may return either as text.
    if (Number(rows[0]?.locked) !== 1) throw new SessionLockTimeoutError(this.options.lockTimeout);
    return this.readOn(connection, sid);
  }

  private async readOn(connection: SqlConnection, sid: string): Promise<SessionRow | undefined> {
    return this.live((await this.on(connection, this.statementMs, this.sql.select, [sid], sid)).rows[0]);
  }

  /** A row as read, if it has not expired by the session clock. */
  private live(row: Record<string, unknown> | undefined): SessionRow | undefined {
    return liveRow(row, this.clock.now());
  }

  private heldLock(sid: string, row: SessionRow | undefined, connection: SqlConnection, leaveQueue: () => void, lease?: HeldLease): SessionLock {
    let released = false;
    return {
      sid,
      row,
      connection,
      lease,
      release: async () => {
        if (released) return;
        released = true;
        try {
          if (lease) await lease.release();
          else if (this.options.dialect === 'mysql') await this.releaseLock(connection, lockName(sid));
        } finally {
          connection.release();
          leaveQueue();
        }
      }
    };
  }

  private async releaseLock(connection: SqlConnection, name: string): Promise<void> {
    let released: unknown;
    try {
      released = (await this.on(connection, this.statementMs, 'SELECT RELEASE_LOCK(?) AS released', [name])).rows[0]?.released;
    } catch (error) {
      released = error;
    }
    if (Number(released) === 1) return;
    // The connection may still hold the lock: never hand it back to the pool, end it so the server frees the lock.
    this.logger.error(`Could not release session lock ${name} (${released instanceof Error ? released.message : String(released)}); closing its connection`);
    connection.destroy();
  }

  /**
   * One statement: on the lock's connection, or on a pooled one with the wait for it and the
   * statement both bounded, so a saturated pool or a silent server gives a 503, never a hang.
   */
  private async run(sql: string, params: unknown[], via?: Via, sid = via?.sid): Promise<SqlOutcome> {
    if (via) return this.on(via.connection, this.statementMs, sql, params, sid);
    const within = this.options.lockTimeout;
    const connection = await this.connect(within * 1000, () => this.unavailable(new Error(`no database connection was free within ${within}s`), 'connect', sid), sid);
    try {
      return await this.on(connection, this.statementMs, sql, params, sid);
    } finally {
      connection.release();
    }
  }

  /** A pooled connection; a pool that cannot connect (the server is down) is a 503, its cause logged. */
  private async connect(waitMs: number, late: () => Error, sid?: string): Promise<SqlConnection> {
    try {
      return await this.pool.connect(waitMs, late);
    } catch (error) {
      if (error instanceof SessionLockTimeoutError || error instanceof SessionStoreUnavailableError) throw error;
      throw this.unavailable(error, 'connect', sid);
    }
  }

  /** Store failures become a 503 that tells the client nothing more, its cause logged; lock timeouts pass through as they are. */
  private async on(connection: SqlConnection, timeoutMs: number, sql: string, params: unknown[], sid?: string): Promise<SqlOutcome> {
    this.telemetry.roundTrip(this.telemetry.storeSystem, sql);
    try {
      return await connection.run(sql, params, timeoutMs, () => this.unavailable(new Error(`the database did not answer within ${Math.round(timeoutMs)} ms`), operationOf(sql), sid));
    } catch (error) {
      if (error instanceof SessionLockTimeoutError || error instanceof SessionStoreUnavailableError) throw error;
      if (isDuplicateKey(error)) throw error;
      if (clusterRefusal(error)) return this.again(connection, timeoutMs, sql, params, error, sid);
      throw this.unavailable(error, operationOf(sql), sid);
    }
  }

  /**
   * A statement a multi-primary cluster refused, run again (bounded, with jitter): each of
   * EzSession's statements is its own transaction, and a refused one changed nothing, so running it
   * again is what retrying the transaction means; a version the row moved past meanwhile makes it
   * a lost race (0 rows) that the writer handles as it always does. Within the statement's time.
   */
  private async again(connection: SqlConnection, timeoutMs: number, sql: string, params: unknown[], first: unknown, sid: string | undefined): Promise<SqlOutcome> {
    const until = performance.now() + timeoutMs;
    let last = first;
    for (let attempt = 2; attempt <= CONFLICT_ATTEMPTS; attempt++) {
      const pause = Math.random() * Math.min(50, 2 ** attempt);
      if (performance.now() + pause >= until) break;
      await sleep(pause);
      this.telemetry.count('conflictRetries');
      try {
        return await connection.run(sql, params, Math.max(1, until - performance.now()), () =>
          this.unavailable(new Error(`the database did not answer within ${Math.round(timeoutMs)} ms`), operationOf(sql), sid)
        );
      } catch (error) {
        if (error instanceof SessionStoreUnavailableError || isDuplicateKey(error)) throw error;
        if (!clusterRefusal(error)) throw this.unavailable(error, operationOf(sql), sid);
        last = error;
      }
    }
    // A node that stays unready has lost the cluster (no quorum): that is an unavailable store.
    if (clusterRefusal(last) === 'conflict') throw new SessionWriteConflictError(CONFLICT_ATTEMPTS, last);
    throw this.unavailable(last, operationOf(sql), sid);
  }

  private unavailable(cause: unknown, operation: string, sid: string | undefined): SessionStoreUnavailableError {
    this.errors.report(cause, { operation, sid });
    return new SessionStoreUnavailableError(cause);
  }

  /** How long one statement on a session row may take: a server that does not answer is unavailable. */
  private get statementMs(): number {
    return Math.max(1000, this.options.lockTimeout * 1000);
  }

  private statements() {
    const { table, revoked } = this;
    const columns = 'data, flash, user_id, created_at, expires_at, version';
    const mysql = this.options.dialect === 'mysql';
    return {
      select: `SELECT ${columns} FROM ${table} WHERE sid = ?`,
      update: `UPDATE ${table} SET data = ?, flash = ?, user_id = ?, updated_at = ?, expires_at = ?, version = version + 1 WHERE sid = ? AND version = ? AND expires_at > ?`,
      insert: `INSERT INTO ${table} (sid, data, flash, user_id, created_at, updated_at, expires_at, user_agent, ip, device, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
      insertUnlessRevoked:
        `INSERT INTO ${table} (sid, data, flash, user_id, created_at, updated_at, expires_at, user_agent, ip, device, version) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1` +
        `${mysql ? ' FROM DUAL' : ''} WHERE NOT EXISTS (SELECT 1 FROM ${revoked} WHERE sid = ? AND expires_at > ?)`,
      deleteAtVersion: `DELETE FROM ${table} WHERE sid = ? AND version = ?`,
      deleteRow: `DELETE FROM ${table} WHERE sid = ?`,
      touch: `UPDATE ${table} SET expires_at = ?, updated_at = ? WHERE sid = ? AND expires_at < ? AND expires_at > ?`,
      tombstone: mysql
        ? `INSERT INTO ${revoked} (sid, revoked_at, expires_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE expires_at = GREATEST(expires_at, VALUES(expires_at))`
        : `INSERT INTO ${revoked} (sid, revoked_at, expires_at) VALUES (?, ?, ?) ON CONFLICT (sid) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`,
      // The derived table is materialized first (LIMIT forbids merging it into the outer query),
      // so the row is read once GET_LOCK has returned: verified on MariaDB 10.11 only.
      lockAndSelect: `SELECT l.locked, s.${columns.split(', ').join(', s.')} FROM (SELECT GET_LOCK(?, ?) AS locked LIMIT 1) AS l LEFT JOIN ${table} AS s ON l.locked = 1 AND s.sid = ?`
    };
  }
}

/** `ezs:` + SHA-256 of the sid: 64 ASCII characters, within MySQL's limit, case never folds two sids together. */
export function lockName(sid: string): string {
  return `ezs:${createHash('sha256').update(sid).digest('hex').slice(0, 60)}`;
}

/** What a statement does, for the log: its verb and table, or the lock call (no values, which may be data). */
function operationOf(sql: string): string {
  const lock = /\b(GET_LOCK|RELEASE_LOCK)\b/.exec(sql);
  if (lock) return lock[1];
  const body = withoutStatementSettings(sql);
  // The table a SELECT reads FROM; the one an INSERT, UPDATE or DELETE names (an INSERT … SELECT … FROM DUAL writes the first).
  const statement = /^\s*(?:(SELECT)\b.*?\bFROM|(INSERT INTO|UPDATE|DELETE FROM))\s+([`"]?\w+[`"]?)/is.exec(body);
  return statement ? `${(statement[1] ?? statement[2]).toUpperCase()} ${statement[3]}` : body.trim().split(/\s+/)[0].toUpperCase();
}

/** The per-user lock of the session cap: a name no session lock can have (`ezs:` + a sid's hash). */
export function userLockName(userId: string): string {
  return `ezu:${createHash('sha256').update(userId).digest('hex').slice(0, 60)}`;
}

function textOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

function liveRow(row: Record<string, unknown> | undefined, now: number): SessionRow | undefined {
  if (!row || row.data === null || row.data === undefined) return undefined;
  const expiresAt = Number(row.expires_at);
  if (expiresAt <= now) return undefined;
  return {
    data: String(row.data),
    flash: row.flash === null || row.flash === undefined ? null : String(row.flash),
    createdAt: Number(row.created_at),
    expiresAt,
    version: Number(row.version ?? 0),
    // VARBINARY comes back as a Buffer of the UTF-8 that was written.
    userId: row.user_id === null || row.user_id === undefined ? null : Buffer.isBuffer(row.user_id) ? row.user_id.toString('utf8') : String(row.user_id)
  };
}

/** How many times a statement runs in all when a multi-primary cluster keeps refusing it. */
const CONFLICT_ATTEMPTS = 10;

/**
 * 'conflict': a certification failure (Galera reports a write that lost to another node's at commit
 * as ER_LOCK_DEADLOCK 1213, "Deadlock found" or "wsrep aborted transaction"). 'unready': the node
 * is not serving yet or for the moment ("WSREP has not yet prepared node for application use",
 * ER_UNKNOWN_COM_ERROR 1047, during a view change). Both are worth running again; nothing else is.
 */
function clusterRefusal(error: unknown): 'conflict' | 'unready' | undefined {
  const { code, errno, message } = (error ?? {}) as { code?: string; errno?: number; message?: string };
  if (errno === 1213 || code === 'ER_LOCK_DEADLOCK') return 'conflict';
  if ((errno === 1047 || code === 'ER_UNKNOWN_COM_ERROR') && typeof message === 'string' && /WSREP/i.test(message)) return 'unready';
  return undefined;
}

function isDuplicateKey(error: unknown): boolean {
  const { code, errno, message } = (error ?? {}) as { code?: string; errno?: number; message?: string };
  return code === 'ER_DUP_ENTRY' || errno === 1062 || (typeof message === 'string' && /UNIQUE constraint failed/.test(message));
}
