import { Inject, Injectable } from '@nestjs/common';
import { SessionCache } from '../cache/session-cache.js';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import { SessionLimitError } from '../ez-session.errors.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { RevocationRegistry } from '../revocation/revocation.registry.js';
import type { RequestSession, SessionChanges } from '../session/request-session.js';
import { SessionEvents } from '../session/session-events.js';
import { SessionLifetimes } from '../session/session-lifetimes.js';
import { storedUserId } from '../session/session-writer.js';
import { SessionRepository } from '../storage/session.repository.js';

/**
 * `maxSessionsPerUser`: applied to the write that gives a session a user id (a login), under the
 * user's lock, which spans instances (see `SessionRepository.withUserLock`): the user's live
 * sessions are counted, the least recently active evicted (or the login refused), and the write
 * commits before the lock is let go, so concurrent logins of one user anywhere count each other.
 */
@Injectable()
export class SessionLimit {
  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    private readonly repository: SessionRepository,
    private readonly cache: SessionCache,
    private readonly revocations: RevocationRegistry,
    private readonly events: SessionEvents,
    private readonly lifetimes: SessionLifetimes
  ) {}

  /** The user id this write gives the session, when it is a login under a cap; `undefined` otherwise (no cap, no new user id). */
  loginOf(session: RequestSession, changes: SessionChanges): string | undefined {
    const source = this.options.userId;
    if (this.options.maxSessionsPerUser === undefined || !source) return undefined;
    if ('session' in source) {
      // Only keys whose value changed are in `changes.data`: the same user again is no new login.
      return changes.data.has(source.session) ? (storedUserId(changes.data.get(source.session)) ?? undefined) : undefined;
    }
    const now = storedUserId(session.customClaims[source.claim]);
    return now !== null && now !== storedUserId(session.claimAsOpened(source.claim)) ? now : undefined;
  }

  /** Runs the login's `write` once the user is within the cap. */
  async admit(userId: string, session: RequestSession, write: () => Promise<void>): Promise<void> {
    const max = this.options.maxSessionsPerUser!;
    await this.repository.withUserLock(userId, async () => {
      const others = (await this.repository.findByUser(userId)).filter((row) => row.sid !== session.sid && row.sid !== session.previousSid);
      const excess = others.length - (max - 1);
      if (excess > 0) {
        if (this.options.onSessionLimit === 'refuse') throw new SessionLimitError(max);
        // Newest activity first: the last ones are the least recently used.
        for (const evicted of others.slice(-excess)) await this.evict(evicted.sid, userId, session.sid);
      }
      await write();
    });
  }

  private async evict(sid: string, userId: string, bySid: string): Promise<void> {
    const until = this.lifetimes.revocationEnd();
    await this.repository.revokeUnlocked(sid, until);
    await this.cache.delete(sid);
    await this.revocations.announce(sid, until);
    this.events.emit({ type: 'sessionLimitEvicted', sid, userId, bySid });
  }
}
