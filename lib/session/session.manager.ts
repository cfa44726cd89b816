import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { SessionCache, type CachedSession } from '../cache/session-cache.js';
import { EZ_SESSION_CLOCK, toSeconds } from '../clock/session-clock.js';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import { SessionClaimError, SessionDataError, SessionLockTimeoutError } from '../ez-session.errors.js';
import type { EzSessionClock } from '../interfaces/ez-session-options.interface.js';
import type { CounterKey } from '../observability/instruments.js';
import { SessionTelemetry } from '../observability/session-telemetry.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { RevocationRegistry } from '../revocation/revocation.registry.js';
import { SessionRepository, type SessionLock, type SessionRow } from '../storage/session.repository.js';
import { MAX_TOKEN_BYTES, SessionTokenCodec } from '../token/session-token.codec.js';
import type { RequestSession, SessionChanges } from './request-session.js';
import { keptNames, retainKeys, type KeptNames, type RegenerateOptions } from './regenerate-options.js';
import { decodeStored, emptyDocument, encodeDocument } from './session-document.js';
import { SessionEvents } from './session-events.js';
import { SessionLifetimes } from './session-lifetimes.js';
import { SessionWriter } from './session-writer.js';
import { userIdOf } from './user-id.js';
import { SessionLimit } from '../users/session-limit.js';

/** What goes back to the client: a new token (`maxAge` undefined: a browser-session cookie), or an order to clear the cookie. */
export type IssuedToken = { token: string; maxAge: number | undefined } | { clear: true };

/** How many times regenerate copies the row again because a write changed it while it was being moved. */
const MAX_MOVES = 8;

/**
 * A request's session after the token was read: lazy load -> (handler) -> changes -> write ->
 * new token, and the operations that end or move a session. Storage is touched only when something
 * asked for the data or changed it.
 */
@Injectable()
export class SessionManager {
  private readonly logger = new Logger('EzSession');

  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    private readonly codec: SessionTokenCodec,
    private readonly repository: SessionRepository,
    private readonly cache: SessionCache,
    private readonly writer: SessionWriter,
    private readonly revocations: RevocationRegistry,
    private readonly events: SessionEvents,
    @Inject(EZ_SESSION_CLOCK) private readonly clock: EzSessionClock,
    private readonly lifetimes: SessionLifetimes,
    private readonly limit: SessionLimit,
    private readonly telemetry: SessionTelemetry
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
    const loading = this.telemetry.span('ezsession.load', session.sid, () => this.readStored(session));
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
    this.resolved(session, 'requestsStore');
    let row = session.lock.row;
    if (!row && session.stored) {
      // The token says stored but the row is gone (ended): a new session, whose fresh id needs no lock.
      await this.release(session);
      session.restart(toSeconds(this.clock.now()));
      row = undefined;
    }
    session.loadedVersion = row?.version;
    session.loadedExpiresAt = row?.expiresAt;
    this.attachRow(session, row);
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
      // changes() refuses unstorable values, and the token must fit a cookie, before anything is written.
      const changes = session.changes();
      if (changes.claimsChanged) {
        this.assertTokenFits(session);
        // A user id in a claim reaches no column when nothing is stored, and is refused all the same.
        if (this.options.userId && 'claim' in this.options.userId) userIdOf(this.options.userId, {}, session.customClaims);
      }
      if (changes.data.size > 0 || changes.flashSet.size > 0 || changes.flashConsumed.size > 0) {
        const login = this.limit.loginOf(session, changes);
        const write = () => this.telemetry.span('ezsession.write', session.sid, () => this.writer.write(session, changes));
        if (login === undefined) await write();
        else await this.limit.admit(login, session, write);
      } else if (!handlerFailed) {
        await this.extendIfDue(session);
      }
      return this.tokenFor(session, changes);
    } catch (error) {
      if (error instanceof SessionDataError || error instanceof SessionClaimError) this.telemetry.count('writeRefusals');
      throw error;
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

  /**
   * New id for the same data and claims; the old id is revoked everywhere. Under the old id's
   * lock: the row is copied to the new id, the old id tombstoned, then its row deleted at the
   * version copied. A write that lands on the old row meanwhile makes that delete miss: the row is
   * copied again, so no acknowledged write is left behind in the old row.
   */
  regenerate(session: RequestSession, options: RegenerateOptions = {}): Promise<void> {
    const sid = randomUUID();
    return this.telemetry.span('ezsession.revoke', sid, () => this.regenerateTo(session, sid, options), session.sid);
  }

  private async regenerateTo(session: RequestSession, sid: string, options: RegenerateOptions): Promise<void> {
    // Checked before anything moves: a keep list that is not one, or a lifetime out of bounds, changes nothing.
    const lifetime = options.idleTimeout !== undefined || options.absoluteTimeout !== undefined ? this.lifetimes.requested(options) : session.lifetime;
    // Its user was logged out everywhere while this request ran (its token was checked before):
    // the new id must not carry the old session on, so it starts empty.
    const loggedOut = this.revocations.refusesUser(session.sid, session.createdAt, session.customClaims);
    const keep = loggedOut ? keptNames({ keep: [] }) : keptNames(options);
    const previousSid = session.sid;
    const createdAt = this.clock.now();
    // A lifetime of its own starts now; otherwise the row keeps the expiry it had.
    const expiresAt = lifetime !== session.lifetime ? this.lifetimes.rowExpiry({ createdAt: toSeconds(createdAt), lifetime }, createdAt) : undefined;
    const device = session.owner.device?.();
    let moved: SessionRow | undefined;
    await this.underLock(session, async (lock) => {
      await this.repository.revoke(lock, this.lifetimes.revocationEnd(), { keepRow: true });
      let copied: number | undefined;
      for (let move = 1; ; move++) {
        const row = await this.repository.find(previousSid, lock);
        if (!row) break;
        const kept = keep ? this.retainedRow(previousSid, row, keep) : row;
        const next = { data: kept.data, flash: kept.flash ?? '{}', createdAt, expiresAt: expiresAt ?? row.expiresAt, userId: kept.userId };
        if (copied === undefined) await this.repository.insert(sid, { ...next, device }, false, lock);
        else await this.repository.update(sid, copied, next, lock);
        copied = copied === undefined ? 1 : copied + 1;
        moved = { ...row, ...kept, version: copied, createdAt, expiresAt: next.expiresAt };
        if ((await this.repository.delete(previousSid, row.version, lock)) || move === MAX_MOVES) break;
      }
    });
    if (moved) await this.cache.set(sid, { data: moved.data, flash: moved.flash ?? '{}', expiresAt: moved.expiresAt, version: moved.version }, this.lifetimes.cacheTtl(moved.expiresAt, this.clock.now()));
    await this.cache.delete(previousSid);
    await this.revocations.announce(previousSid, this.lifetimes.revocationEnd());
    session.stored = moved !== undefined;
    if (keep) session.retain(keep);
    // The row moved may hold writes the request did not read: its next write starts from the row.
    session.moveTo(sid, toSeconds(this.clock.now()), undefined);
    session.lifetime = lifetime;
    if (options.authenticated) session.authenticatedAt = toSeconds(this.clock.now());
    this.events.emit({ type: 'regenerated', sid, previousSid });
  }

  /** The row as it moves to the new id with only the kept names: its data and flash, and the user id if what it came from is kept. */
  private retainedRow(sid: string, row: SessionRow, keep: KeptNames): Pick<SessionRow, 'data' | 'flash' | 'userId'> {
    const document = decodeStored(sid, row.data, row.flash, this.logger) ?? emptyDocument();
    retainKeys(document.data, keep.data);
    retainKeys(document.flash, keep.flash);
    // Copied from what was stored: its values came out of JSON, and it only got smaller.
    const encoded = encodeDocument(document, Number.MAX_SAFE_INTEGER);
    const source = this.options.userId;
    const userKept = source !== undefined && ('session' in source ? keep.data.has(source.session) : keep.claims.has(source.claim));
    return { data: encoded.data, flash: encoded.flash, userId: userKept ? row.userId : null };
  }

  /** Deletes the session and revokes its id; flash set afterwards still reaches the next request. */
  async destroy(session: RequestSession): Promise<void> {
    const sid = session.sid;
    if (session.idMintedHere && !session.stored) {
      // No valid token came (none, forged, expired, revoked), or its id was already replaced here:
      // no token of this id is out, so there is nothing to revoke, and a flood of cookie-less
      // logouts must cost no row, no memory and no message.
      await this.release(session);
      session.restart(toSeconds(this.clock.now()));
      session.destroyed = true;
      session.forgetStoredData();
      return;
    }
    await this.telemetry.span('ezsession.revoke', sid, () => this.endStored(session, sid));
    session.restart(toSeconds(this.clock.now()));
    session.destroyed = true;
    session.forgetStoredData();
    this.events.emit({ type: 'destroyed', sid });
  }

  private async endStored(session: RequestSession, sid: string): Promise<void> {
    await this.underLock(session, (lock) => this.repository.revoke(lock, this.lifetimes.revocationEnd()));
    await this.cache.delete(sid);
    await this.revocations.announce(sid, this.lifetimes.revocationEnd());
  }

  /** Revokes a session by id (admin, "log out everywhere"): row, cache entry and every token of it. */
  revoke(sid: string): Promise<void> {
    return this.telemetry.span('ezsession.revoke', sid, () => this.revokeNow(sid));
  }

  private async revokeNow(sid: string): Promise<void> {
    await this.repository.withLock(sid, (lock) => this.repository.revoke(lock, this.lifetimes.revocationEnd()));
    await this.cache.delete(sid);
    await this.revocations.announce(sid, this.lifetimes.revocationEnd());
    this.events.emit({ type: 'revoked', sid });
  }

  /**
   * Revokes `sid` only if its live row belongs to `userId`, checked under the session's lock so it
   * cannot change owner in between; `false` (and nothing done) otherwise.
   */
  async revokeOwned(sid: string, userId: string): Promise<boolean> {
    const revoked = await this.repository.withLock(sid, async (lock) => {
      if (lock.row?.userId !== userId) return false;
      await this.repository.revoke(lock, this.lifetimes.revocationEnd());
      return true;
    });
    if (!revoked) return false;
    await this.cache.delete(sid);
    await this.revocations.announce(sid, this.lifetimes.revocationEnd());
    return true;
  }

  /** The cached copy (one Redis GET), else the row (one SELECT), which then refills the cache. */
  private readStored(session: RequestSession): Promise<void> {
    return this.cache.get(session.sid).then((cached) => {
      // Redis expires the entry on its own time; the session's end is checked here, on the session clock.
      if (cached && cached.expiresAt > this.clock.now()) {
        this.resolved(session, 'requestsCache');
        session.loading = undefined;
        if (!session.loaded) this.attachStored(session, cached);
        return undefined;
      }
      return this.readRow(session);
    });
  }

  /** A miss: a lease first, then the row, so the refill cannot land after a newer write (see SessionCache). */
  private async readRow(session: RequestSession): Promise<void> {
    try {
      const lease = await this.cache.lease(session.sid);
      if (!lease) this.telemetry.count('refillsSkipped');
      const row = await this.repository.find(session.sid);
      this.resolved(session, 'requestsStore');
      const found: CachedSession | undefined = row && { data: row.data, flash: row.flash ?? '{}', expiresAt: row.expiresAt, version: row.version };
      if (found && lease) await this.cache.fill(session.sid, lease, found, this.lifetimes.cacheTtl(found.expiresAt, this.clock.now()));
      if (session.loaded) return; // a locked read got there first
      this.attachStored(session, found);
    } finally {
      session.loading = undefined;
    }
  }

  private attachStored(session: RequestSession, found: CachedSession | undefined): void {
    const document = found && decodeStored(session.sid, found.data, found.flash, this.logger);
    if (!found || !document) {
      // The token says stored, but the session ended (idle expiry, destroyed elsewhere): start a
      // new one rather than resurrect the old id.
      this.events.emit({ type: 'expired', sid: session.sid, reason: 'idle' });
      session.restart(toSeconds(this.clock.now()));
      session.attach(emptyDocument());
      return;
    }
    session.loadedVersion = found.version;
    session.loadedExpiresAt = found.expiresAt;
    session.attach(document, () => decodeStored(session.sid, found.data, found.flash, this.logger)!.data);
    if (this.extensionDue(session)) session.changed();
  }

  private attachRow(session: RequestSession, row: SessionRow | undefined): void {
    const document = row ? decodeStored(session.sid, row.data, row.flash, this.logger) : undefined;
    session.attach(document ?? emptyDocument(), () => (row ? decodeStored(session.sid, row.data, row.flash, this.logger)?.data : undefined) ?? {});
  }

  /**
   * Sliding expiry at most once per half idle window: one conditional UPDATE, and the cache entry
   * dropped so the next read picks up the new expiry.
   */
  private async extendIfDue(session: RequestSession): Promise<void> {
    if (!this.extensionDue(session)) return;
    await this.telemetry.span('ezsession.write', session.sid, () => this.repository.touch(session.sid, this.lifetimes.rowExpiry(session, this.clock.now())));
    await this.cache.delete(session.sid);
  }

  /** Less than half the idle window left on the stored row, and the absolute cap still leaves room to extend it. */
  private extensionDue(session: RequestSession): boolean {
    const loaded = session.loadedExpiresAt;
    if (!session.stored || loaded === undefined) return false;
    return this.lifetimes.extensionDue(session, loaded, this.clock.now());
  }

  private tokenFor(session: RequestSession, changes: SessionChanges): IssuedToken | undefined {
    const hasClaims = Object.keys(session.customClaims).length > 0;
    if (session.destroyed && !session.stored && !hasClaims) return { clear: true };
    const mustTell = changes.claimsChanged || session.storedFlagChanged || session.replaced || session.refresh;
    if (!mustTell || !(session.stored || hasClaims || session.hadToken)) return undefined;

    const now = toSeconds(this.clock.now());
    const exp = this.lifetimes.tokenExpiry(session, now);
    const token = this.codec.sign(
      { sid: session.sid, stored: session.stored, exp, sct: session.createdAt, fp: session.fingerprint, lt: session.lifetime, aat: session.authenticatedAt, custom: session.customClaims },
      now
    );
    if ((!session.hadToken || session.replaced) && !session.previousSid) this.events.emit({ type: 'created', sid: session.sid });
    return { token, maxAge: this.lifetimes.cookieMaxAge(session, exp, now) };
  }

  /** Refuses claims that would make a cookie the browser drops; the trial token is as long as any this session can get. */
  private assertTokenFits(session: RequestSession): void {
    const now = toSeconds(this.clock.now());
    const trial = this.codec.sign(
      { sid: session.sid, stored: false, exp: now + this.lifetimes.idle(session), sct: session.createdAt, fp: session.fingerprint, lt: session.lifetime, aat: session.authenticatedAt, custom: session.customClaims },
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
      await lock.release();
    }
  }

  /** A request that ended without reading its stored data was served from its claims alone. */
  countUnread(session: RequestSession): void {
    this.resolved(session, 'requestsClaims');
  }

  /** Counts a request with a stored session once, by where its data came from (see SessionOpener). */
  private resolved(session: RequestSession, key: CounterKey): void {
    if (!session.uncounted) return;
    session.uncounted = false;
    this.telemetry.count(key);
  }

  private async lock(sid: string): Promise<SessionLock> {
    try {
      return await this.telemetry.span('ezsession.lock', sid, () => this.repository.lock(sid));
    } catch (error) {
      if (error instanceof SessionLockTimeoutError) this.telemetry.count('lockTimeouts');
      if (error instanceof SessionLockTimeoutError) this.events.emit({ type: 'lockTimeout', sid });
      throw error;
    }
  }
}
