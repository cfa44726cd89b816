import { randomUUID } from 'node:crypto';
import { ReadonlySessionError, SessionClaimError } from '../ez-session.errors.js';
import { FlashBag } from '../flash/flash-bag.js';
import type { SessionLock, SessionRow } from '../storage/session.repository.js';
import { RESERVED_CLAIMS, type SessionClaims } from '../token/session-claims.js';
import { ChangeTracker } from './change-tracker.js';
import { assertJsonSafe, fingerprintValue, type SessionDocument } from './session-document.js';
import type { SessionUsage } from './session-usage.js';

/** What a request changed, collected once the handler has returned. */
export interface SessionChanges {
  /** Top-level data keys whose value differs from what was loaded; `undefined` means deleted. */
  data: Map<string, unknown>;
  flashSet: ReadonlyMap<string, unknown>;
  flashConsumed: ReadonlyMap<string, string>;
  claimsChanged: boolean;
}

/**
 * One request's view of its session: the verified token, the data loaded for it (only when a
 * handler asked for it), and trackers that record what the handler changes.
 */
export class RequestSession {
  sid: string;
  stored: boolean;
  /** A valid token came with the request. */
  readonly hadToken: boolean;
  /** Whether the client must get a new token even if nothing else changed (e.g. its `stored` flag was wrong). */
  replaced = false;
  /** The lock held across the handler, for `@Session({ lock: true })`. */
  lock: SessionLock | undefined;
  /** The row as read under `lock` before the handler ran (`null`: none); the write need not read it again. */
  lockedRow: SessionRow | null | undefined;
  committed = false;

  private readonly incomingStored: boolean;
  private claims: ChangeTracker;
  private claimsBaseline: string;
  private data: ChangeTracker | undefined;
  private dataBaseline: SessionDocument['data'] = {};
  private flashBag: FlashBag | undefined;

  constructor(
    claims: SessionClaims | undefined,
    readonly usage: SessionUsage
  ) {
    this.hadToken = claims !== undefined;
    this.sid = claims?.sid ?? randomUUID();
    this.stored = this.incomingStored = claims?.stored ?? false;
    this.claims = this.trackClaims(claims?.custom ?? {});
    this.claimsBaseline = JSON.stringify(this.claims.target);
  }

  /** Hands the handler the loaded document; called once, before the handler runs. */
  attach(document: SessionDocument, baseline: SessionDocument): void {
    this.dataBaseline = baseline.data;
    this.data = new ChangeTracker(document.data, (key) => {
      if (this.usage.readonly) throw new ReadonlySessionError(key);
    });
    this.flashBag = new FlashBag(document.flash, this.usage.readonly);
  }

  /** Starts over with a new id and nothing in it: the token pointed at a session that no longer exists. */
  restart(): void {
    this.sid = randomUUID();
    this.stored = false;
    this.replaced = true;
    this.claims = this.trackClaims({});
    this.claimsBaseline = '{}';
  }

  get sessionProxy(): Record<string, unknown> {
    if (!this.data) throw new Error('EzSession: the session was not loaded for this handler');
    return this.data.proxy;
  }

  get jwtProxy(): Record<string, unknown> {
    return this.claims.proxy;
  }

  get flash(): FlashBag {
    if (!this.flashBag) throw new Error('EzSession: flash was not loaded for this handler');
    return this.flashBag;
  }

  get customClaims(): Record<string, unknown> {
    return this.claims.target;
  }

  /** Whether the `stored` flag now differs from what the client's token says. */
  get storedFlagChanged(): boolean {
    return this.stored !== this.incomingStored;
  }

  /** Throws a SessionDataError naming the first value that cannot be stored exactly. */
  changes(): SessionChanges {
    const data = new Map<string, unknown>();
    if (this.data) {
      for (const key of this.data.changed) {
        const value = this.data.target[key];
        if (value !== undefined) assertJsonSafe(value, `session.${key}`);
        if (fingerprintValue(value) !== fingerprintValue(this.dataBaseline[key])) data.set(key, value);
      }
    }
    const flash = this.flashBag?.changes();
    return {
      data,
      flashSet: flash?.set ?? new Map(),
      flashConsumed: flash?.consumed ?? new Map(),
      claimsChanged: this.claims.changed.size > 0 && JSON.stringify(this.claims.target) !== this.claimsBaseline
    };
  }

  private trackClaims(custom: Record<string, unknown>): ChangeTracker {
    return new ChangeTracker(custom, (name) => {
      if (RESERVED_CLAIMS.has(name)) {
        throw new SessionClaimError(`The claim "${name}" is reserved by EzSession and cannot be set through @Jwt(); reserved: ${[...RESERVED_CLAIMS].join(', ')}.`);
      }
    });
  }
}
