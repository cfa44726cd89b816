/** Claims EzSession owns; `@Jwt()` never shows them and refuses to set them. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'sid', 'stored', 'iat', 'exp', 'nbf', 'iss', 'aud', 'sub', 'jti', 'typ', 'kid', 'fp', 'sct', 'lt', 'aat'
]);

/** What a verified token says. */
export interface SessionClaims {
  /** Session id: a random UUID v4. */
  sid: string;
  /** Whether data exists in the store for this sid (a read hint; writes never trust it). */
  stored: boolean;
  iat: number;
  exp: number;
  /** When the session was created (seconds): the start of its absolute timeout. */
  sct: number;
  /** Keyed hash of what the session is bound to (user agent, IP...), if anything. */
  fp: string | undefined;
  /** The session's own lifetime in seconds, `[idle, absolute]`, when it has one ("remember me"); the module's otherwise. */
  lt?: [number, number] | undefined;
  /** When the user last authenticated in this session (seconds), for `@RequireSession({ freshWithin })`. */
  aat?: number | undefined;
  /** The application's own claims (everything not reserved). */
  custom: Record<string, unknown>;
}

/** A token checked: its claims, or why it was refused. */
export type TokenVerdict =
  | { valid: true; claims: SessionClaims; key: number }
  | { valid: false; reason: 'absent' | 'malformed' | 'signature' }
  | { valid: false; reason: 'expired'; sid: string };

export const SID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
