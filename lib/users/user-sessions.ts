import { Inject, Injectable, type ExecutionContext } from '@nestjs/common';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import type { RequestSession } from '../session/request-session.js';
import { RequestSessions } from '../session/request-sessions.js';
import { SessionEvents } from '../session/session-events.js';
import { SessionManager } from '../session/session.manager.js';
import { storedUserId } from '../session/session-writer.js';
import { SessionRepository } from '../storage/session.repository.js';
import { SID_PATTERN } from '../token/session-claims.js';

/** A stored session as `listForUser` shows it: a row of a "where you're signed in" page. */
export interface ActiveSession {
  sid: string;
  createdAt: Date;
  /**
   * The last write of the session (a data change, or the sliding expiry's extension, at most once per
   * half idle window): accurate to within half the idle timeout, at no cost to reads.
   */
  lastSeenAt: Date;
  expiresAt: Date;
  /** As recorded when the session was created or last regenerated; `null` when not recorded (rows from before 0.3, `devices` options). */
  ip: string | null;
  userAgent: string | null;
  /** "Chrome 130 on macOS", "Safari 17 on iPhone"; `null` when the user agent names no known browser. */
  device: string | null;
  /** The session of the request passed to `listForUser`. */
  current: boolean;
  /** @deprecated the same as `lastSeenAt` (the name of 0.2). */
  updatedAt: Date;
}

/**
 * The sessions of one user across devices: listing them, ending one or all the others. Stored
 * sessions only: a session that stores nothing (claims only) has no row and is not listed (it ends
 * with `revokeAllForUser`'s per-user cut-off or its own expiry).
 */
@Injectable()
export class UserSessions {
  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    private readonly requests: RequestSessions,
    private readonly manager: SessionManager,
    private readonly repository: SessionRepository,
    private readonly events: SessionEvents
  ) {}

  /** The id of the request's session, with no I/O; `undefined` when it has none (no valid token, or it was destroyed in this request). */
  sessionId(context: ExecutionContext | object): string | undefined {
    const session = this.requests.of(context);
    if (session.destroyed && !session.stored) return undefined;
    return session.stored || session.hadToken || session.previousSid !== undefined ? session.sid : undefined;
  }

  async list(method: string, userId: string | number, context?: ExecutionContext | object): Promise<ActiveSession[]> {
    this.requireUserIdOption(method);
    const current = context === undefined ? undefined : this.sessionId(context);
    const rows = await this.repository.findByUser(String(userId));
    return rows.map((row) => ({
      sid: row.sid,
      createdAt: new Date(row.createdAt),
      lastSeenAt: new Date(row.updatedAt),
      expiresAt: new Date(row.expiresAt),
      ip: row.ip,
      userAgent: row.userAgent,
      device: row.device,
      current: row.sid === current,
      updatedAt: new Date(row.updatedAt)
    }));
  }

  /** Ends every other stored session of the request's user, on every instance; how many. 0 without a user. */
  async revokeOthers(context: ExecutionContext | object): Promise<number> {
    this.requireUserIdOption('revokeOthers');
    const session = this.requests.of(context);
    const userId = await this.userIdOf(session);
    if (userId === null) return 0;
    let revoked = 0;
    for (const row of await this.repository.findByUser(userId)) {
      if (row.sid === session.sid) continue;
      if (await this.manager.revokeOwned(row.sid, userId)) {
        revoked++;
        this.events.emit({ type: 'revokedByUser', sid: row.sid, userId, bySid: session.sid });
      }
    }
    return revoked;
  }

  /** Ends `sid` if, and only if, it is a live session of `userId` (a devices page's "sign out" button cannot end anyone else's). */
  async revokeForUser(userId: string | number, sid: string): Promise<boolean> {
    this.requireUserIdOption('revokeForUser');
    if (typeof sid !== 'string' || !SID_PATTERN.test(sid)) return false;
    const owner = String(userId);
    if (!(await this.manager.revokeOwned(sid, owner))) return false;
    this.events.emit({ type: 'revokedByUser', sid, userId: owner });
    return true;
  }

  private async userIdOf(session: RequestSession): Promise<string | null> {
    const source = this.options.userId!;
    if ('claim' in source) return storedUserId(session.customClaims[source.claim]);
    const data = await this.requests.whenLoaded(session, () => session.currentData);
    return storedUserId(data[source.session]);
  }

  requireUserIdOption(method: string): void {
    if (!this.options.userId) {
      throw new Error(`EzSessionService.${method}() needs the userId option, e.g. userId: { session: 'userId' }`);
    }
  }
}
