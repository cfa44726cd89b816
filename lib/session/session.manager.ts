import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { SessionCache, type CachedSession } from '../cache/session-cache.js';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import { SessionClaimError } from '../ez-session.errors.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { SessionRepository, type SessionRow } from '../storage/session.repository.js';
import { MAX_TOKEN_BYTES, SessionTokenCodec, nowSeconds } from '../token/session-token.codec.js';
import { readToken } from '../token/token-transport.js';
import { RequestSession, type SessionChanges } from './request-session.js';
import {
  assertJsonSafe,
  decodeDocument,
  emptyDocument,
  encodeDocument,
  isEmptyDocument,
  type SessionDocument
} from './session-document.js';
import type { SessionUsage } from './session-usage.js';

/** A token to send back: the interceptor puts it in Set-Cookie and the token header. */
export interface IssuedToken {
  token: string;
  maxAge: number;
}

/**
 * One request's path through EzSession: token -> lazy load -> (handler) -> changes -> locked
 * write -> new token. Storage is touched only when the handler's decorators need it.
 */
@Injectable()
export class SessionManager {
  private readonly logger = new Logger('EzSession');

  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    private readonly codec: SessionTokenCodec,
    private readonly repository: SessionRepository,
    private readonly cache: SessionCache
  ) {}

  /** Verifies the token and loads what the handler's decorators need; no I/O for claims-only handlers. */
  async open(headers: Record<string, string | string[] | undefined>, usage: SessionUsage): Promise<RequestSession> {
    const session = new RequestSession(this.codec.verify(readToken(headers, this.options.cookie.name)), usage);
    if (usage.session || usage.flash) {
      if (usage.lock && !usage.readonly) await this.loadLocked(session);
      else await this.load(session);
    }
    return session;
  }

  /**
   * Persists what the handler changed and returns the token to send, if any. The token is only
   * issued after the write committed, so a client never holds `stored=true` for data that is not there.
   */
  async commit(session: RequestSession): Promise<IssuedToken | undefined> {
    if (session.committed) return undefined;
    session.committed = true;
    try {
      const changes = session.changes();
      // changes() has already refused unstorable values: before any lock, so nothing is written and nothing waits.
      if (changes.data.size > 0 || changes.flashSet.size > 0 || changes.flashConsumed.size > 0) {
        await this.persist(session, changes);
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

  private async load(session: RequestSession): Promise<void> {
    if (!session.stored) {
      session.attach(emptyDocument(), emptyDocument());
      return;
    }
    const cached = await this.cache.get(session.sid);
    const now = Date.now();
    let found: CachedSession | undefined = cached && cached.expiresAt > now ? cached : undefined;
    if (!found) {
      const row = await this.repository.find(session.sid);
      if (row) {
        found = { data: row.data, flash: row.flash ?? '{}', expiresAt: row.expiresAt };
        await this.cache.fill(session.sid, found, this.cacheTtl(row.expiresAt));
      }
    }
    const document = found && this.decode(session.sid, found.data, found.flash);
    if (!document) {
      // The token says stored, but the session ended (expired, destroyed): start a new one
      // rather than resurrect the old id.
      session.restart();
      session.attach(emptyDocument(), emptyDocument());
      return;
    }
    session.attach(document, this.decode(session.sid, found!.data, found!.flash)!);
  }

  /** `@Session({ lock: true })`: the lock is taken first and the row is read inside it. */
  private async loadLocked(session: RequestSession): Promise<void> {
    session.lock = await this.repository.lock(session.sid);
    let row = await session.lock.read();
    if (!row && session.stored) {
      await this.release(session);
      session.restart();
      session.lock = await this.repository.lock(session.sid);
      row = undefined;
    }
    session.lockedRow = row ?? null;
    session.attach(this.documentOf(session.sid, row), this.documentOf(session.sid, row));
  }

  private async persist(session: RequestSession, changes: SessionChanges): Promise<void> {
    // With `lock: true` the row was read under the lock this request still holds; otherwise lock now and re-read.
    let row = session.lockedRow;
    if (row === undefined) {
      session.lock = await this.repository.lock(session.sid);
      row = (await session.lock.read()) ?? null;
      if (!row && session.stored) {
        // The session ended while this request ran: writing would bring it back under its old id.
        await this.release(session);
        session.restart();
        session.lock = await this.repository.lock(session.sid);
      }
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
    const now = Date.now();
    const expiresAt = now + this.options.idleTimeout * 1000;
    const next: SessionRow = { data: encoded.data, flash: encoded.flash, createdAt: row?.createdAt ?? now, expiresAt };
    if (row) await lock.update(next);
    else await lock.insert(next);
    await this.cache.set(session.sid, { data: encoded.data, flash: encoded.flash, expiresAt }, this.cacheTtl(expiresAt));
    session.stored = true;
  }

  private tokenFor(session: RequestSession, changes: SessionChanges): IssuedToken | undefined {
    const carriesSomething = session.stored || Object.keys(session.customClaims).length > 0;
    const mustTell = changes.claimsChanged || session.storedFlagChanged || session.replaced;
    if (!mustTell || !(carriesSomething || session.hadToken)) return undefined;

    if (changes.claimsChanged) assertJsonSafe(session.customClaims, 'jwt');
    const now = nowSeconds();
    const exp = now + this.options.idleTimeout;
    const token = this.codec.sign({ sid: session.sid, stored: session.stored, exp, custom: session.customClaims }, now);
    const cookieBytes = this.options.cookie.name.length + 1 + token.length;
    if (cookieBytes > MAX_TOKEN_BYTES) {
      throw new SessionClaimError(
        `The session token would be ${cookieBytes} bytes with its cookie name, over the ${MAX_TOKEN_BYTES} a browser keeps; keep @Jwt() claims small (they are ${JSON.stringify(session.customClaims).length} bytes of JSON) and put larger data in @Session().`
      );
    }
    return { token, maxAge: exp - now };
  }

  private documentOf(sid: string, row: SessionRow | null | undefined): SessionDocument {
    return (row && this.decode(sid, row.data, row.flash)) || emptyDocument();
  }

  private decode(sid: string, data: string, flash: string | null): SessionDocument | undefined {
    try {
      return decodeDocument(data, flash);
    } catch (error) {
      this.logger.error(`Stored session ${hashForLog(sid)} is not valid JSON and is treated as empty: ${(error as Error).message}`);
      return undefined;
    }
  }

  /** A cache entry never outlives its session. */
  private cacheTtl(expiresAt: number): number {
    return Math.min(this.options.cacheTtl * 1000, expiresAt - Date.now());
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

/** Logs never carry a session id that could be replayed. */
function hashForLog(sid: string): string {
  return `${sid.slice(0, 8)}…`;
}
