import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { SessionCache, type CachedSession } from '../cache/session-cache.js';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import { SessionClaimError, SessionLockTimeoutError } from '../ez-session.errors.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { RevocationRegistry } from '../revocation/revocation.registry.js';
import { SessionRepository, type SessionLock, type SessionRow } from '../storage/session.repository.js';
import { MAX_TOKEN_BYTES, SessionTokenCodec, nowSeconds } from '../token/session-token.codec.js';
import type { RequestSession, SessionChanges } from './request-session.js';
import { decodeDocument, emptyDocument, encodeDocument, isEmptyDocument, type SessionDocument } from './session-document.js';
import { SessionEvents } from './session-events.js';

/** What goes back to the client: a new token, or an order to clear the cookie. */
export type IssuedToken = { token: string; maxAge: number } | { clear: true };

/**
 * A request's session after the token was read: lazy load -> (handler) -> changes -> locked
 * write -> new token, and the operations that end or move a session. Storage is touched only when
 * something asked for the data or changed it.
 */
@Injectable()
export class SessionManager {
  private readonly logger = new Logger('EzSession');

  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    private readonly codec: SessionTokenCodec,
    private readonly repository: SessionRepository,
    private readonly cache: SessionCache,
    private readonly revocations: RevocationRegistry,
    private readonly events: SessionEvents
  ) {}

  /**
   * Reads the stored data once per request, whoever asks first; later asks share the read.
   * Returns nothing, without a promise, when nothing has to be read (nothing stored, or read already).
   */
  load(session: RequestSession): Promise<void> | undefined {
    if (session.lockedLoading) return session.lockedLoading;
    if (session.loaded) return undefined;
    if (session.loading) return session.loading;
    if (!session.stored) {
      session.attach(emptyDocument());
      return undefined;
    }
    const loading = this.readStored(session);
    session.loading = loading;
    return loading;
  }

  /**
   * `@Session({ lock: true })`: takes the lock and reads the row under it, once per request. Data
   * read earlier without the lock (by a guard) is replaced by what the lock protects.
   */
  loadLocked(session: RequestSession): Promise<void> {
    return (session.lockedLoading ??= this.readLocked(session));
  }

  private async readLocked(session: RequestSession): Promise<void> {
    if (session.loading) await session.loading.catch(() => undefined);
    session.lock = await this.lock(session.sid);
    session.changed();
    let read = await session.lock.read();
    if (read.revoked || (!read.row && session.stored)) {
      await this.release(session);
      session.restart(nowSeconds());
      session.lock = await this.lock(session.sid);
      read = { row: undefined, revoked: false };
    }
    session.lockedRead = read;
    session.loadedExpiresAt = read.row?.expiresAt;
    const row = read.row;
    session.attach(this.documentOf(session.sid, row), () => this.documentOf(session.sid, row).data);
  }

  /**
   * Persists what the request changed and says what to send back. A token is only issued after the
   * write committed, so a client never holds `stored=true` for data that is not there. After a
   * failed handler (an error response) nothing it changed is written; a held lock is released and
   * a regeneration or destroy that already happened is still told to the client.
   * Returns `undefined` at once, without a promise, when there is nothing to do.
   */
  commit(session: RequestSession, handlerFailed = false): Promise<IssuedToken | undefined> | undefined {
    if (session.committed) return undefined;
    session.committed = true;
    if (handlerFailed) session.discardChanges();
    if (session.untouched && !this.extensionDue(session)) return undefined;
    return this.commitChanges(session, handlerFailed);
  }

  private async commitChanges(session: RequestSession, handlerFailed: boolean): Promise<IssuedToken | undefined> {
    try {
      // changes() refuses unstorable values, and the token must fit a cookie, before any lock: nothing is written and nothing waits.
      const changes = session.changes();
      if (changes.claimsChanged) this.assertTokenFits(session);
      if (changes.data.size > 0 || changes.flashSet.size > 0 || changes.flashConsumed.size > 0) {
        await this.persist(session, changes);
      } else if (!handlerFailed) {
        await this.extendIfDue(session);
      }
      return this.tokenFor(session, changes);
    } finally {
      await this.release(session);
    }
  }

  /** Drops a held lock without writing (the handler failed or the client went away). */
  async release(session: RequestSession): Promise<void> {
    const lock = session.lock;
    session.lock = undefined;
    await lock?.release();
  }

  /** New id for the same data and claims; the old id is revoked everywhere. */
  async regenerate(session: RequestSession): Promise<void> {
    const previousSid = session.sid;
    const sid = randomUUID();
    const now = Date.now();
    await this.underLock(session, async (lock) => {
      const { row, revoked } = session.lockedRead ?? (await lock.read());
      if (row && !revoked) await lock.copyTo(sid, { ...row, createdAt: now });
      await lock.revoke(this.revocationEnd());
      if (row && !revoked) await this.cache.set(sid, { data: row.data, flash: row.flash ?? '{}', expiresAt: row.expiresAt }, this.cacheTtl(row.expiresAt));
      session.stored = Boolean(row && !revoked);
    });
    await this.cache.delete(previousSid);
    await this.revocations.announce(previousSid, this.revocationEnd());
    session.moveTo(sid, nowSeconds());
    this.events.emit({ type: 'regenerated', sid, previousSid });
  }

  /** Deletes the session and revokes its id; flash set afterwards still reaches the next request. */
  async destroy(session: RequestSession): Promise<void> {
    const sid = session.sid;
    await this.underLock(session, (lock) => lock.revoke(this.revocationEnd()));
    await this.cache.delete(sid);
    await this.revocations.announce(sid, this.revocationEnd());
    session.restart(nowSeconds());
    session.destroyed = true;
    session.forgetStoredData();
    this.events.emit({ type: 'destroyed', sid });
  }

  /** Revokes a session by id (admin, "log out everywhere"): row, cache entry and every token of it. */
  async revoke(sid: string): Promise<void> {
    await this.repository.withLock(sid, (lock) => lock.revoke(this.revocationEnd()));
    await this.cache.delete(sid);
    await this.revocations.announce(sid, this.revocationEnd());
    this.events.emit({ type: 'revoked', sid });
  }

  /** The cached copy (one Redis GET), else the row (one SELECT), which then refills the cache. */
  private readStored(session: RequestSession): Promise<void> {
    return this.cache.get(session.sid).then((cached) => {
      if (cached && cached.expiresAt > Date.now()) {
        session.loading = undefined;
        if (!session.loaded) this.attachStored(session, cached);
        return undefined;
      }
      return this.readRow(session);
    });
  }

  private async readRow(session: RequestSession): Promise<void> {
    try {
      const row = await this.repository.find(session.sid);
      const found = row && { data: row.data, flash: row.flash ?? '{}', expiresAt: row.expiresAt };
      if (found) await this.cache.fill(session.sid, found, this.cacheTtl(found.expiresAt));
      if (session.loaded) return; // a locked read got there first
      this.attachStored(session, found);
    } finally {
      session.loading = undefined;
    }
  }

  private attachStored(session: RequestSession, found: CachedSession | undefined): void {
    const document = found && this.decode(session.sid, found.data, found.flash);
    if (!found || !document) {
      // The token says stored, but the session ended (idle expiry, destroyed elsewhere): start a
      // new one rather than resurrect the old id.
      this.events.emit({ type: 'expired', sid: session.sid, reason: 'idle' });
      session.restart(nowSeconds());
      session.attach(emptyDocument());
      return;
    }
    session.loadedExpiresAt = found.expiresAt;
    session.attach(document, () => this.decode(session.sid, found.data, found.flash)!.data);
    if (this.extensionDue(session)) session.changed();
  }

  private async persist(session: RequestSession, changes: SessionChanges): Promise<void> {
    // With `lock: true` the row was read under the lock this request still holds; otherwise lock now and re-read.
    if (!session.lockedRead) {
      session.lock ??= await this.lock(session.sid);
      session.lockedRead = await session.lock.read();
    }
    let { row } = session.lockedRead;
    if (session.lockedRead.revoked || (!row && session.stored)) {
      // The session ended while this request ran: writing would bring it back under its old id.
      await this.release(session);
      session.restart(nowSeconds());
      session.lock = await this.lock(session.sid);
      row = undefined;
    }
    const lock = session.lock!;
    const document = this.documentOf(session.sid, row);
    applyChanges(document, changes);

    if (isEmptyDocument(document)) {
      if (row) {
        await lock.delete();
        await this.cache.delete(session.sid);
      }
      session.stored = false;
      return;
    }

    const encoded = encodeDocument(document, this.options.maxSessionBytes);
    const createdAt = row?.createdAt ?? session.createdAt * 1000;
    const expiresAt = this.expiryFrom(Date.now(), createdAt);
    const next: SessionRow = { data: encoded.data, flash: encoded.flash, createdAt, expiresAt, userId: this.userIdOf(session, document) };
    if (row) await lock.update(next);
    else await lock.insert(next);
    await this.cache.set(session.sid, { data: encoded.data, flash: encoded.flash, expiresAt }, this.cacheTtl(expiresAt));
    session.stored = true;
  }

  /**
   * Sliding expiry at most once per half idle window: one conditional UPDATE, and the cache entry
   * dropped so the next read picks up the new expiry.
   */
  private async extendIfDue(session: RequestSession): Promise<void> {
    if (!this.extensionDue(session)) return;
    await this.repository.touch(session.sid, this.expiryFrom(Date.now(), session.createdAt * 1000));
    await this.cache.delete(session.sid);
  }

  /** Less than half the idle window left on the stored row, and the absolute cap still leaves room to extend it. */
  private extensionDue(session: RequestSession): boolean {
    const loaded = session.loadedExpiresAt;
    if (!session.stored || loaded === undefined) return false;
    const now = Date.now();
    return loaded - now <= (this.options.idleTimeout * 1000) / 2 && this.expiryFrom(now, session.createdAt * 1000) > loaded;
  }

  private tokenFor(session: RequestSession, changes: SessionChanges): IssuedToken | undefined {
    const hasClaims = Object.keys(session.customClaims).length > 0;
    if (session.destroyed && !session.stored && !hasClaims) return { clear: true };
    const mustTell = changes.claimsChanged || session.storedFlagChanged || session.replaced || session.refresh;
    if (!mustTell || !(session.stored || hasClaims || session.hadToken)) return undefined;

    const now = nowSeconds();
    const exp = Math.min(now + this.options.idleTimeout, session.createdAt + this.options.absoluteTimeout);
    const token = this.codec.sign(
      { sid: session.sid, stored: session.stored, exp, sct: session.createdAt, fp: session.fingerprint, custom: session.customClaims },
      now
    );
    if ((!session.hadToken || session.replaced) && !session.previousSid) this.events.emit({ type: 'created', sid: session.sid });
    return { token, maxAge: exp - now };
  }

  /** Refuses claims that would make a cookie the browser drops; the trial token is as long as any this session can get. */
  private assertTokenFits(session: RequestSession): void {
    const now = nowSeconds();
    const trial = this.codec.sign(
      { sid: session.sid, stored: false, exp: now + this.options.idleTimeout, sct: session.createdAt, fp: session.fingerprint, custom: session.customClaims },
      now
    );
    const cookieBytes = this.options.cookie.name.length + 1 + trial.length;
    if (cookieBytes > MAX_TOKEN_BYTES) {
      throw new SessionClaimError(
        `The session token would be ${cookieBytes} bytes with its cookie name, over the ${MAX_TOKEN_BYTES} a browser keeps; keep @Jwt() claims small (they are ${JSON.stringify(session.customClaims).length} bytes of JSON) and put larger data in @Session(). Nothing was written.`
      );
    }
  }

  /** Runs `work` under the session's lock: the one this request holds, or one taken for it. */
  private async underLock(session: RequestSession, work: (lock: SessionLock) => Promise<void>): Promise<void> {
    const held = session.lock;
    const lock = held ?? (await this.lock(session.sid));
    try {
      await work(lock);
    } finally {
      session.lock = undefined;
      session.lockedRead = undefined;
      await lock.release();
    }
  }

  private async lock(sid: string): Promise<SessionLock> {
    try {
      return await this.repository.lock(sid);
    } catch (error) {
      if (error instanceof SessionLockTimeoutError) this.events.emit({ type: 'lockTimeout', sid });
      throw error;
    }
  }

  /** A row never outlives the absolute timeout, counted from the session's creation. */
  private expiryFrom(now: number, createdAt: number): number {
    return Math.min(now + this.options.idleTimeout * 1000, createdAt + this.options.absoluteTimeout * 1000);
  }

  /** A tombstone lasts as long as the longest token that could still name the id. */
  private revocationEnd(): number {
    return Date.now() + (this.options.idleTimeout + this.options.clockSkew) * 1000;
  }

  private userIdOf(session: RequestSession, document: SessionDocument): string | null {
    const source = this.options.userId;
    if (!source) return null;
    const value = 'session' in source ? document.data[source.session] : session.customClaims[source.claim];
    return typeof value === 'string' || typeof value === 'number' ? String(value).slice(0, 191) : null;
  }

  private documentOf(sid: string, row: SessionRow | null | undefined): SessionDocument {
    return (row && this.decode(sid, row.data, row.flash)) || emptyDocument();
  }

  private decode(sid: string, data: string, flash: string | null): SessionDocument | undefined {
    try {
      return decodeDocument(data, flash);
    } catch (error) {
      this.logger.error(`Stored session ${sid.slice(0, 8)}… is not valid JSON and is treated as empty: ${(error as Error).message}`);
      return undefined;
    }
  }

  /** A cache entry never outlives its session: it ends a second early, to cover the time the SET takes to land. */
  private cacheTtl(expiresAt: number): number {
    return Math.min(this.options.cacheTtl * 1000, expiresAt - Date.now() - 1000);
  }
}

function applyChanges(document: SessionDocument, changes: SessionChanges): void {
  for (const [key, value] of changes.data) {
    if (value === undefined) delete document.data[key];
    else document.data[key] = value;
  }
  for (const [key, id] of changes.flashConsumed) {
    // Only the value this request read: one set again meanwhile by another request stays.
    if (document.flash[key]?.id === id) delete document.flash[key];
  }
  for (const [key, value] of changes.flashSet) document.flash[key] = { id: randomUUID().slice(0, 8), value };
}
