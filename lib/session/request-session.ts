import { randomUUID } from 'node:crypto';
import { ReadonlySessionError, SessionClaimError } from '../ez-session.errors.js';
import { FlashBag } from '../flash/flash-bag.js';
import type { SessionLock } from '../storage/session.repository.js';
import type { DeviceDetails } from '../users/device-details.js';
import { RESERVED_CLAIMS, type SessionClaims } from '../token/session-claims.js';
import type { TokenCarrier } from '../token/token-transport.js';
import { ChangeTracker } from './change-tracker.js';
import { readonlyView } from './readonly-view.js';
import { retainKeys, type KeptNames } from './regenerate-options.js';
import { assertJsonSafe, emptyDocument, serializedValue, type SessionDocument } from './session-document.js';

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
  /** How the request carried its token (valid or not), if it carried one. */
  carrier?: TokenCarrier;
}

/** Who holds a request's session: it computes the binding hash, and hears of the first change. */
export interface SessionOwner {
  fingerprint(): string | undefined;
  /** Called once, on the first change (or the first thing that needs a commit). */
  changed(session: RequestSession): void;
  /** The device of the request, for the INSERT that creates or regenerates a stored session. */
  device?(): DeviceDetails | undefined;
}

/**
 * One request's session: the verified token, the data once someone asked for it (loaded at most
 * once), and trackers that record what the request changes. Whoever asks first opens it (a
 * parameter decorator, a guard, a service call); its owner hears of the first change, so the
 * response can wait for the commit.
 */
export class RequestSession {
  sid: string;
  stored: boolean;
  /** Session creation time (seconds), the start of the absolute timeout. */
  createdAt: number;
  /** The session's own lifetime in seconds, `[idle, absolute]` ("remember me"); `undefined`: the module's. */
  lifetime: [number, number] | undefined;
  /** When the user last authenticated in this session (seconds of the session clock). */
  authenticatedAt: number | undefined;
  /** A valid token came with the request. */
  readonly hadToken: boolean;
  readonly refresh: boolean;
  /** How the request carried its token: a Bearer client gets new tokens in the header, a browser's stay in the cookie. */
  readonly carrier: TokenCarrier | undefined;
  /** The client must get a new token even if nothing else changed (new id, or its `stored` flag was wrong). */
  replaced = false;
  /** The session was destroyed in this request; the cookie is cleared unless something new is stored. */
  destroyed = false;
  /** The id a regeneration replaced in this request. */
  previousSid: string | undefined;
  /** The lock held across the handler (`@Session({ lock: true })`); the row it read is the one loaded. */
  lock: SessionLock | undefined;
  /** The row version the loaded data came from; `undefined` when no row was there (a write then creates it). */
  loadedVersion: number | undefined;
  /** Expiry of the stored row as loaded (ms), to decide whether to extend it. */
  loadedExpiresAt: number | undefined;
  /** The id was made in this process (no token, or a new session started): no one else can have revoked it. */
  idMintedHere: boolean;
  committed = false;
  /** A read of the data in progress. */
  loading: Promise<void> | undefined;
  /** The read under the lock (`@Session({ lock: true })`), taken once per request. */
  lockedLoading: Promise<void> | undefined;
  /** A stored session not yet counted in `ezsession.requests`: that waits to see whether its data is read, and from where. */
  uncounted = false;

  private knownFingerprint: string | undefined | null;
  private readonly incomingStored: boolean;
  private claims: ChangeTracker;
  /** The claims as they came, serialized when the request first changes one (most never do). */
  private claimsBaseline: string | undefined;
  private document: SessionDocument | undefined;
  private data: ChangeTracker | undefined;
  private dataReadonly: Record<string, unknown> | undefined;
  /** The data as loaded, to compare changed keys against; parsed only if some key changed. */
  private dataBaseline: () => SessionDocument['data'] = () => ({});
  private flashBag: FlashBag | undefined;
  private claimsReadonly: Readonly<Record<string, unknown>> | undefined;
  private changeNoticed = false;

  constructor(
    start: SessionStart,
    readonly owner: SessionOwner
  ) {
    const { claims } = start;
    this.hadToken = claims !== undefined;
    this.idMintedHere = !this.hadToken;
    this.sid = claims?.sid ?? randomUUID();
    this.stored = this.incomingStored = claims?.stored ?? false;
    this.createdAt = claims?.sct ?? start.now;
    this.lifetime = claims?.lt;
    this.authenticatedAt = claims?.aat;
    this.knownFingerprint = start.fingerprint;
    this.refresh = start.refresh;
    this.carrier = start.carrier;
    this.claims = this.trackClaims(claims?.custom ?? {});
  }

  /** The response must wait for this session's commit (a change, a held lock, a renewal due). */
  changed(): void {
    if (this.changeNoticed) return;
    this.changeNoticed = true;
    this.owner.changed(this);
  }

  /** Whether anything asked for a commit; when not, the request finishes without EzSession. */
  get awaitsCommit(): boolean {
    return this.changeNoticed && !this.committed;
  }

  get loaded(): boolean {
    return this.document !== undefined;
  }

  /** Hands over the loaded document; `baseline` gives a pristine copy of its data when needed. */
  attach(document: SessionDocument, baseline: () => SessionDocument['data'] = () => ({})): void {
    let parsed: SessionDocument['data'] | undefined;
    this.document = document;
    this.dataBaseline = () => (parsed ??= baseline());
    this.data = undefined;
    this.dataReadonly = undefined;
    this.flashBag = undefined;
  }

  /** Starts over with a new id and nothing in it: the old session ended (expired, destroyed, revoked). */
  restart(now: number): void {
    this.sid = randomUUID();
    this.idMintedHere = true;
    this.stored = false;
    this.replaced = true;
    this.createdAt = now;
    this.lifetime = undefined;
    this.authenticatedAt = undefined;
    this.knownFingerprint = null;
    this.loadedVersion = undefined;
    this.claims = this.trackClaims({});
    this.claimsBaseline = undefined;
    this.claimsReadonly = undefined;
    this.changed();
  }

  /** After a destroy: data read before it is gone; what the request sets from now on (and flash) belongs to the new session. */
  forgetStoredData(): void {
    if (this.data) {
      for (const key of Object.keys(this.data.target)) delete this.data.target[key];
      this.data.clearChanges();
    } else if (this.document) {
      this.document.data = {};
    }
    this.dataBaseline = () => ({});
    if (this.document) this.document.flash = {};
    this.flashBag?.forgetIncoming();
  }

  /**
   * Regeneration with `keep`: what the request holds of the session (the data and flash it read,
   * its claims, what it set so far) loses every name not kept. Changed in place, so the objects a
   * handler was given (`@Session()`, `@Jwt()`, `@Flash()`) stay the ones that count; the removals are
   * not changes to write, the new row is already without them.
   */
  retain(keep: KeptNames): void {
    if (this.document) {
      retainKeys(this.document.data, keep.data);
      retainKeys(this.document.flash, keep.flash);
    }
    this.flashBag?.retain(keep.flash);
    retainKeys(this.claims.target, keep.claims);
  }

  /** Moves to a new id keeping data and claims (regeneration). */
  moveTo(sid: string, now: number, version: number | undefined): void {
    this.previousSid = this.sid;
    this.sid = sid;
    this.idMintedHere = true;
    this.createdAt = now;
    this.replaced = true;
    this.loadedVersion = version;
    this.changed();
  }

  /** The binding hash that goes into this session's next token, computed only when a token is issued. */
  get fingerprint(): string | undefined {
    if (this.knownFingerprint === null) this.knownFingerprint = this.owner.fingerprint();
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

  /** The data as a tracked object: changes at any depth are recorded per top-level key. */
  get trackedData(): Record<string, unknown> {
    if (!this.data) {
      this.data = new ChangeTracker(this.loadedDocument.data, () => this.changed());
    }
    return this.data.proxy;
  }

  /** The data as a view that refuses every change, naming `reader` in the error. */
  readonlyData(reader: string, hint?: string): Readonly<Record<string, unknown>> {
    return (this.dataReadonly ??= readonlyView(this.loadedDocument.data, (key) => new ReadonlySessionError(key, reader, hint)));
  }

  /** The custom claims as a tracked object; changing one sends a new token. */
  get trackedClaims(): Record<string, unknown> {
    return this.claims.proxy;
  }

  /** The custom claims as a view that refuses every change. */
  readonlyClaims(reader: string): Readonly<Record<string, unknown>> {
    return (this.claimsReadonly ??= readonlyView(this.claims.target, (key) => new ReadonlySessionError(`jwt.${key}`, reader)));
  }

  /** The flash values; `readonlyReader` names who may read but not consume or set them. */
  flash(readonlyReader?: string): FlashBag {
    return (this.flashBag ??= new FlashBag(this.loadedDocument.flash, readonlyReader, () => this.changed()));
  }

  get customClaims(): Record<string, unknown> {
    return this.claims.target;
  }

  /** A custom claim as the token brought it, before this request changed any. */
  claimAsOpened(name: string): unknown {
    return this.claimsBaseline === undefined ? this.claims.target[name] : (JSON.parse(this.claimsBaseline) as Record<string, unknown>)[name];
  }

  /** The flash values as loaded (what earlier requests left). */
  get storedFlash(): SessionDocument['flash'] {
    return this.document?.flash ?? {};
  }

  /** The data as the request left it. */
  get currentData(): Record<string, unknown> {
    return this.data?.target ?? this.document?.data ?? emptyDocument().data;
  }

  /** Whether the `stored` flag now differs from what the client's token says. */
  get storedFlagChanged(): boolean {
    return this.stored !== this.incomingStored;
  }

  /**
   * The handler failed (the response is an error): what it changed is not kept. Operations that
   * already happened (regenerate, destroy) stay done and the client still hears of them.
   */
  discardChanges(): void {
    this.data?.clearChanges();
    this.flashBag?.discard();
    if (this.claims.changed.size > 0) {
      this.claims = this.trackClaims(this.claimsBaseline === undefined ? {} : (JSON.parse(this.claimsBaseline) as Record<string, unknown>));
      this.claimsBaseline = undefined;
      this.claimsReadonly = undefined;
    }
  }

  /** Throws a SessionDataError naming the first value that cannot be stored exactly. */
  changes(): SessionChanges {
    const data = new Map<string, unknown>();
    if (this.data) {
      for (const key of this.data.changed) {
        const value = this.data.target[key];
        if (value !== undefined) assertJsonSafe(value, `session.${key}`);
        if (serializedValue(value) !== serializedValue(this.dataBaseline()[key])) data.set(key, value);
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

  private get loadedDocument(): SessionDocument {
    if (!this.document) throw new Error('EzSession: the session data was read before it was loaded');
    return this.document;
  }

  private trackClaims(custom: Record<string, unknown>): ChangeTracker {
    return new ChangeTracker(custom, (name) => {
      // The tracker asks before it applies a change, so this still sees the claims as they came.
      this.claimsBaseline ??= JSON.stringify(custom);
      if (RESERVED_CLAIMS.has(name)) {
        throw new SessionClaimError(`The claim "${name}" is reserved by EzSession and cannot be set through @Jwt(); reserved: ${[...RESERVED_CLAIMS].join(', ')}.`);
      }
      this.changed();
    });
  }
}
