/** Claims EzSession owns; `@Jwt()` never shows them and refuses to set them. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'sid', 'stored', 'iat', 'exp', 'nbf', 'iss', 'aud', 'sub', 'jti', 'typ', 'kid', 'fp', 'sct'
]);

/** What a verified token says. */
export interface SessionClaims {
  /** Session id: a random UUID v4. */
  sid: string;
  /** Whether data exists in the store for this sid (a read hint; writes never trust it). */
  stored: boolean;
  iat: number;
  exp: number;
  /** The application's own claims (everything not reserved). */
  custom: Record<string, unknown>;
}

export const SID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
