import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { SessionCache } from '../cache/session-cache.js';
import { EZ_SESSION_CLOCK, toSeconds } from '../clock/session-clock.js';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import { SessionLockLostError, SessionLockTimeoutError } from '../ez-session.errors.js';
import type { EzSessionClock } from '../interfaces/ez-session-options.interface.js';
import { SessionTelemetry } from '../observability/session-telemetry.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { SessionRepository, type SessionLock, type SessionRow, type Via } from '../storage/session.repository.js';
import type { RequestSession, SessionChanges } from './request-session.js';
import { SessionLifetimes } from './session-lifetimes.js';
import { decodeStored, emptyDocument, encodeDocument, isEmptyDocument, type SessionDocument } from './session-document.js';
import { userIdOf } from './user-id.js';

/** What a write starts from: the row version it read (none: no row yet) and the document to store. */
interface Base {
  version: number | undefined;
  document: SessionDocument;
}

/** A write this instance committed, serialized, for the writes of the same session queued behind it. */
interface Committed {
  version: number;
  data: string;
  flash: string;
}

/** One request's write, waiting for its turn (settled once). */
interface Job {
  session: RequestSession;
  changes: SessionChanges;
  resolve(): void;
  reject(error: unknown): void;
  /** Taken into a group (or timed out): no longer waiting. */
  started: boolean;
  timer: NodeJS.Timeout | undefined;
}

/**
 * How many times a write re-reads and tries again when others keep writing the row first. Another
 * instance writing one session back to back can win several rounds in a row; after the second loss
 * a write waits a random moment (up to a millisecond per loss) so that it gets its turn.
 */
const MAX_ATTEMPTS = 25;

/**
 * Writes what a request changed, in one statement when nothing came between its read and its write:
 * an UPDATE that names the row version the request read (or a first INSERT). When another write
 * came first, the row is read again, only this request's changed keys are applied onto it, and the
 * statement is tried again: parallel writers of different keys all land, and for one key the last
 * writer wins. Writes of one session on this instance wait for each other in memory, and those that
 * arrived while one was being written go out together in the next statement (group commit), so
 * they neither conflict nor re-read; only writers on other instances can make a write retry. Then
 * the cache gets the new version, guarded so that an older one never replaces it.
 */
@Injectable()
export class SessionWriter {
  private readonly logger = new Logger('EzSession');
  /** The writes of each session waiting on this instance (present while they are being written). */
  private readonly groups = new Map<string, Job[]>();
  /** The last committed write of each session whose writes are being written. */
  private readonly latest = new Map<string, Committed>();

  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    private readonly repository: SessionRepository,
    private readonly cache: SessionCache,
    @Inject(EZ_SESSION_CLOCK) private readonly clock: EzSessionClock,
    private readonly lifetimes: SessionLifetimes,
    private readonly telemetry: SessionTelemetry
  ) {}

  /** Writes the request's changes; `session.stored` and the session's row version follow what is stored. */
  async write(session: RequestSession, changes: SessionChanges): Promise<void> {
    // With `@Session({ lock: true })` the request read the row under the lock it still holds.
    if (session.lock) return this.attempts(session, changes, await this.firstBase(session, changes, session.lock), session.lock);
    return new Promise<void>((resolve, reject) => {
      const job: Job = { session, changes, resolve, reject, started: false, timer: undefined };
      job.timer = setTimeout(() => {
        if (job.started) return;
        job.started = true;
        reject(new SessionLockTimeoutError(this.options.lockTimeout));
      }, this.options.lockTimeout * 1000);
      const sid = session.sid;
      const waiting = this.groups.get(sid);
      if (waiting) {
        waiting.push(job);
        return;
      }
      this.groups.set(sid, [job]);
      void this.drain(sid);
    });
  }

  /**
   * Commits the writes of one session that queue on this instance, one group at a time: what
   * arrived while the previous group was being written goes out together, in one statement (group
   * commit), so a busy session costs one UPDATE and one cache write per group rather than per
   * request, and its writers never conflict with each other.
   */
  private async drain(sid: string): Promise<void> {
    const waiting = this.groups.get(sid)!;
    try {
      while (waiting.length > 0) {
        const group = waiting.splice(0).filter((job) => !job.started);
        for (const job of group) {
          job.started = true;
          clearTimeout(job.timer);
        }
        if (group.length > 0) await this.commitGroup(sid, group);
      }
    } finally {
      this.groups.delete(sid);
      this.latest.delete(sid);
    }
  }

  /** Settles every job of the group; never throws. */
  private async commitGroup(sid: string, group: Job[]): Promise<void> {
    if (group.length > 1) {
      try {
        if (await this.writeTogether(sid, group)) {
          for (const job of group) job.resolve();
          return;
        }
      } catch {
        // One of them cannot be stored as it is (too large, say): each is tried on its own below, and gets its own answer.
      }
    }
    for (const job of group) {
      try {
        const latest = this.latest.get(job.session.sid);
        const base =
          latest && (job.session.loadedVersion === undefined || latest.version > job.session.loadedVersion)
            ? this.rebase(job.session.sid, latest, job.changes)
            : await this.firstBase(job.session, job.changes, undefined);
        await this.attempts(job.session, job.changes, base, undefined);
        job.resolve();
      } catch (error) {
        job.reject(error);
      }
    }
  }

  /**
   * The changes of every job, in the order they came, onto one document, written with one
   * statement. `false` when the group must be written job by job instead: the session ended or
   * was revoked meanwhile (each request then starts a session of its own).
   */
  private async writeTogether(sid: string, group: Job[]): Promise<boolean> {
    const [lead, ...followers] = group;
    const latest = this.latest.get(sid);
    let base =
      latest && (lead.session.loadedVersion === undefined || latest.version > lead.session.loadedVersion)
        ? this.rebase(sid, latest, lead.changes)
        : await this.firstBase(lead.session, lead.changes, undefined);
    // The lead's own data object stays as its request left it.
    base = { version: base.version, document: { data: { ...base.document.data }, flash: base.document.flash } };
    for (const follower of followers) applyChanges(base.document, follower.changes);
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attemptGroup(group, base);
      if (outcome !== 'conflict') return outcome === 'written';
      if (attempt === MAX_ATTEMPTS) return false;
      this.telemetry.count('writeRetries');
      if (attempt >= 2) await sleep(Math.random() * attempt);
      const row = await this.repository.find(sid);
      if (!row) return false;
      const document = decodeStored(sid, row.data, row.flash, this.logger) ?? emptyDocument();
      for (const job of group) applyChanges(document, job.changes);
      base = { version: row.version, document };
    }
  }

  /** One statement for the whole group. */
  private async attemptGroup(group: Job[], base: Base): Promise<'written' | 'conflict' | 'apart'> {
    const lead = group[0].session;
    const sid = lead.sid;
    const { document, version } = base;
    let written: number | undefined;
    if (isEmptyDocument(document)) {
      if (version !== undefined) {
        if (!(await this.repository.delete(sid, version))) return 'conflict';
        await this.cache.delete(sid);
      }
    } else {
      const encoded = encodeDocument(document, this.options.maxSessionBytes);
      const createdAt = lead.createdAt * 1000;
      const expiresAt = this.lifetimes.rowExpiry(lead, this.clock.now());
      const row = { data: encoded.data, flash: encoded.flash, createdAt, expiresAt, userId: this.userIdOf(group[group.length - 1].session, document) };
      if (version !== undefined) {
        if (!(await this.repository.update(sid, version, row))) return 'conflict';
        written = version + 1;
      } else {
        const outcome = await this.repository.insert(sid, { ...row, device: lead.owner.device?.() }, group.some((job) => !job.session.idMintedHere));
        if (outcome === 'exists') return 'conflict';
        if (outcome === 'revoked') return 'apart';
        written = 1;
      }
      await this.cache.set(sid, { data: encoded.data, flash: encoded.flash, expiresAt, version: written }, this.lifetimes.cacheTtl(expiresAt, this.clock.now()));
      this.latest.set(sid, { version: written, data: encoded.data, flash: encoded.flash });
    }
    for (const { session } of group) {
      session.stored = written !== undefined;
      session.loadedVersion = written;
    }
    this.telemetry.count('writes', group.length);
    return 'written';
  }

  private async attempts(session: RequestSession, changes: SessionChanges, first: Base, via: Via): Promise<void> {
    let base = first;
    for (let attempt = 1; ; attempt++) {
      if (via?.lease && !via.lease.valid()) throw new SessionLockLostError('the lease may have expired while the request ran');
      if (await this.attempt(session, base, via)) return;
      if (via?.lease) await this.assertStillExclusive(session, changes, via);
      if (attempt === MAX_ATTEMPTS) {
        this.logger.warn(`A write of session ${session.sid.slice(0, 8)}… lost to concurrent writes ${MAX_ATTEMPTS} times; answering 503`);
        this.telemetry.count('writeConflicts');
        throw new SessionLockTimeoutError(this.options.lockTimeout);
      }
      this.telemetry.count('writeRetries');
      if (attempt >= 2) await sleep(Math.random() * attempt);
      base = await this.reread(session, changes, via);
    }
  }

  /** One statement; `false` when another write came first (or the row is gone). */
  private async attempt(session: RequestSession, base: Base, via: Via): Promise<boolean> {
    const sid = session.sid;
    const { document, version } = base;
    if (isEmptyDocument(document)) {
      if (version !== undefined) {
        if (!(await this.repository.delete(sid, version, via))) return false;
        await this.cache.delete(sid);
      }
      session.stored = false;
      session.loadedVersion = undefined;
      this.telemetry.count('writes');
      return true;
    }

    const encoded = encodeDocument(document, this.options.maxSessionBytes);
    const createdAt = session.createdAt * 1000;
    const expiresAt = this.lifetimes.rowExpiry(session, this.clock.now());
    const row = { data: encoded.data, flash: encoded.flash, createdAt, expiresAt, userId: this.userIdOf(session, document) };
    let written: number;
    if (version !== undefined) {
      if (!(await this.repository.update(sid, version, row, via))) return false;
      written = version + 1;
    } else {
      const outcome = await this.repository.insert(sid, { ...row, device: session.owner.device?.() }, !session.idMintedHere, via);
      if (outcome === 'exists') return false;
      if (outcome === 'revoked') {
        // Revoked (on another instance) since the token was checked: the data goes to a new session.
        session.restart(toSeconds(this.clock.now()));
        return this.attempt(session, base, via);
      }
      written = 1;
    }
    await this.cache.set(sid, { data: encoded.data, flash: encoded.flash, expiresAt, version: written }, this.lifetimes.cacheTtl(expiresAt, this.clock.now()));
    session.stored = true;
    session.loadedVersion = written;
    if (this.groups.has(sid)) this.latest.set(sid, { version: written, data: encoded.data, flash: encoded.flash });
    this.telemetry.count('writes');
    return true;
  }

  /**
   * A write under a lease found the row moved on. Unlocked writers never took the lock, and
   * writing their keys meanwhile is theirs to do: then this write goes onto theirs, as any write
   * does. But when the lease is gone, or the keys this request changed no longer hold what it read
   * under the lock, another locked request has written as if it held the lock too (this one was
   * paused past its lease, or Redis lost the lease in a failover): writing now would overwrite a
   * write it never saw, so the request fails instead, having written nothing.
   */
  private async assertStillExclusive(session: RequestSession, changes: SessionChanges, lock: SessionLock): Promise<void> {
    if (!(await lock.lease!.stillHeld())) throw new SessionLockLostError('another request took the lock after the lease expired');
    const now = await this.repository.find(session.sid, lock);
    const read = lock.row ? decodeStored(session.sid, lock.row.data, lock.row.flash, this.logger)?.data ?? {} : {};
    const current = now ? decodeStored(session.sid, now.data, now.flash, this.logger)?.data ?? {} : {};
    for (const key of changes.data.keys()) {
      if (JSON.stringify(read[key]) !== JSON.stringify(current[key])) throw new SessionLockLostError(`another request changed "${key}" while this one held the lock`);
    }
  }

  /** The row as it is now, with this request's changes applied; a session that ended meanwhile continues under a new id. */
  private async reread(session: RequestSession, changes: SessionChanges, via: Via): Promise<Base> {
    const row = await this.repository.find(session.sid, via);
    if (row) return this.rebase(session.sid, row, changes);
    if (session.stored || session.loadedVersion !== undefined) {
      // The session ended while this request ran (destroyed, revoked, expired): writing would bring
      // it back under its old id. What this request changed starts a new one.
      session.restart(toSeconds(this.clock.now()));
    }
    return { version: undefined, document: applyChanges(emptyDocument(), changes) };
  }

  /**
   * A stored session whose row version this request does not know (it moved to a new id in this
   * request, say) starts from the row as it is; any other from what the request read.
   */
  private firstBase(session: RequestSession, changes: SessionChanges, via: Via): Base | Promise<Base> {
    return session.stored && session.loadedVersion === undefined ? this.reread(session, changes, via) : this.liveBase(session, changes);
  }

  /**
   * The first try starts from what the request read: its data as the request left it (whose
   * changed keys are exactly what it changed) and the flash it read with its flash changes.
   */
  private liveBase(session: RequestSession, changes: SessionChanges): Base {
    return { version: session.loadedVersion, document: { data: session.currentData, flash: applyFlashChanges({ ...session.storedFlash }, changes) } };
  }

  private rebase(sid: string, stored: Pick<SessionRow, 'version' | 'data' | 'flash'>, changes: SessionChanges): Base {
    const document = decodeStored(sid, stored.data, stored.flash, this.logger) ?? emptyDocument();
    return { version: stored.version, document: applyChanges(document, changes) };
  }

  private userIdOf(session: RequestSession, document: SessionDocument): string | null {
    return userIdOf(this.options.userId, document.data, session.customClaims);
  }
}

/** A user id as the user_id column holds it (its own text, never cut: see user-id.ts); `null` for a value that is not one. */
export function storedUserId(value: unknown): string | null {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : null;
}

/** This request's changes onto a stored document: its changed keys, the flash it set, and the flash values it read (by id). */
export function applyChanges(document: SessionDocument, changes: SessionChanges): SessionDocument {
  for (const [key, value] of changes.data) {
    if (value === undefined) delete document.data[key];
    else document.data[key] = value;
  }
  applyFlashChanges(document.flash, changes);
  return document;
}

function applyFlashChanges(flash: SessionDocument['flash'], changes: SessionChanges): SessionDocument['flash'] {
  for (const [key, id] of changes.flashConsumed) {
    // Only the value this request read: one set again meanwhile by another request stays.
    if (flash[key]?.id === id) delete flash[key];
  }
  for (const [key, value] of changes.flashSet) flash[key] = { id: flashId(), value };
  return flash;
}

function flashId(): string {
  return randomUUID().slice(0, 8);
}

