import { randomUUID } from 'node:crypto';
import { ReadonlySessionError, SessionClaimError } from '../ez-session.errors.js';
import { FlashBag } from '../flash/flash-bag.js';
import type { LockedRead, SessionLock } from '../storage/session.repository.js';
import { RESERVED_CLAIMS, type SessionClaims } from '../token/session-claims.js';
import { ChangeTracker } from './change-tracker.js';
import { assertJsonSafe, emptyDocument, fingerprintValue, type SessionDocument } from './session-document.js';
import type { SessionUsage } from './session-usage.js';

/** What a request changed, collected once the handler has returned. */
export interface SessionChanges {
  /** Top-level data keys whose value differs from what was loaded; `undefined` means deleted. */
  data: Map<string, unknown>;
  flashSet: ReadonlyMap<string, unknown>;
  flashConsumed: ReadonlyMap<string, string>;
  claimsChanged: boolean;
}

/** Facts about the incoming token that the session needs beyond its claims. */
export interface SessionStart {
  claims: SessionClaims | undefined;
  /** Binding hash for the token to issue; `null` when it must be computed (fresh sessions, or a token signed with an old key). */
  fingerprint: string | undefined | null;
  /** The token must be re-issued even if nothing changes (half its idle window used, or an old key). */
  refresh: boolean;
  now: number;
}

/**
 * One request's view of its session: the verified token, the data loaded for it (only when a
 * handler asked for it), and trackers that record what the handler changes.
 */
export class RequestSession {
  sid: string;
  stored: boolean;
  /** Session creation time (seconds), the start of the absolute timeout. */
  createdAt: number;
  /** A valid token came with the request. */
  readonly hadToken: boolean;
  readonly refresh: boolean;
  /** The client must get a new token even if nothing else changed (new id, or its `stored` flag was wrong). */
  replaced = false;
  /** The session was destroyed in this request; the cookie is cleared unless something new is stored. */
  destroyed = false;
  /** The id a regeneration replaced in this request. */
  previousSid: string | undefined;
  /** The lock held across the handler (`@Session({ lock: true })`) or by an operation in progress. */
  lock: SessionLock | undefined;
  /** What was read under `lock`; the write need not read it again. */
  lockedRead: LockedRead | undefined;
  /** Expiry of the stored row as loaded (ms), to decide whether to extend it. */
  loadedExpiresAt: number | undefined;
  committed = false;

  private knownFingerprint: string | undefined | null;
  private readonly incomingStored: boolean;
  private claims: ChangeTracker;
  /** The claims as they came, serialized when the handler first changes one (most never do). */
  private claimsBaseline: string | undefined;
  private data: ChangeTracker | undefined;
  /** The data as loaded, to compare changed keys against; parsed only if some key changed. */
  private dataBaseline: () => SessionDocument['data'] = () => ({});
  private flashBag: FlashBag | undefined;

  constructor(
    start: SessionStart,
    readonly usage: SessionUsage,
    private readonly newFingerprint: () => string | undefined
  ) {
    const { claims } = start;
    this.hadToken = claims !== undefined;
    this.sid = claims?.sid ?? randomUUID();
    this.stored = this.incomingStored = claims?.stored ?? false;
    this.createdAt = claims?.sct ?? start.now;
    this.knownFingerprint = start.fingerprint;
    this.refresh = start.refresh;
    this.claims = this.trackClaims(claims?.custom ?? {});
  }

  /** Hands the handler the loaded document; `baseline` gives a pristine copy of its data when needed. */
  attach(document: SessionDocument, baseline: () => SessionDocument['data'] = () => ({})): void {
    let parsed: SessionDocument['data'] | undefined;
    this.dataBaseline = () => (parsed ??= baseline());
    this.data = new ChangeTracker(document.data, (key) => {
      if (this.usage.readonly) throw new ReadonlySessionError(key);
    });
    this.flashBag = new FlashBag(document.flash, this.usage.readonly);
  }

  /** Starts over with a new id and nothing in it: the old session ended (expired, destroyed, revoked). */
  restart(now: number): void {
    this.sid = randomUUID();
    this.stored = false;
    this.replaced = true;
    this.createdAt = now;
    this.knownFingerprint = null;
    this.lockedRead = undefined;
    this.claims = this.trackClaims({});
    this.claimsBaseline = undefined;
  }

  /** After a destroy: data read before it is gone; what the handler sets from now on (and flash) belongs to the new session. */
  forgetStoredData(): void {
    if (this.data) {
      for (const key of Object.keys(this.data.target)) delete this.data.target[key];
      this.data.changed.clear();
      this.dataBaseline = () => ({});
    }
    this.flashBag?.forgetIncoming();
  }

  /** Moves to a new id keeping data and claims (regeneration). */
  moveTo(sid: string, now: number): void {
    this.previousSid = this.sid;
    this.sid = sid;
    this.createdAt = now;
    this.replaced = true;
    this.lockedRead = undefined;
  }

  /** The binding hash that goes into this session's next token, computed only when a token is issued. */
  get fingerprint(): string | undefined {
    if (this.knownFingerprint === null) this.knownFingerprint = this.newFingerprint();
    return this.knownFingerprint;
  }

  /** Nothing to write, extend or tell the client: the request can finish without any I/O. */
  get untouched(): boolean {
    return (
      !this.refresh &&
      !this.replaced &&
      !this.destroyed &&
      this.lock === undefined &&
      this.claims.changed.size === 0 &&
      (this.data === undefined || this.data.changed.size === 0) &&
      (this.flashBag === undefined || !this.flashBag.touched)
    );
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

  /** The data as the handler left it (for deriving the user id column). */
  get currentData(): Record<string, unknown> {
    return this.data?.target ?? emptyDocument().data;
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
        if (fingerprintValue(value) !== fingerprintValue(this.dataBaseline()[key])) data.set(key, value);
      }
    }
    const flash = this.flashBag?.changes();
    if (this.claims.changed.size > 0) assertJsonSafe(this.claims.target, 'jwt');
    return {
      data,
      flashSet: flash?.set ?? new Map(),
      flashConsumed: flash?.consumed ?? new Map(),
      claimsChanged: this.claims.changed.size > 0 && JSON.stringify(this.claims.target) !== this.claimsBaseline
    };
  }

  private trackClaims(custom: Record<string, unknown>): ChangeTracker {
    return new ChangeTracker(custom, (name) => {
      // The tracker asks before it applies a change, so this still sees the claims as they came.
      this.claimsBaseline ??= JSON.stringify(custom);
      if (RESERVED_CLAIMS.has(name)) {
        throw new SessionClaimError(`The claim "${name}" is reserved by EzSession and cannot be set through @Jwt(); reserved: ${[...RESERVED_CLAIMS].join(', ')}.`);
      }
    });
  }
}
