import { SessionClaimError, SessionDataError } from '../ez-session.errors.js';
import type { EzSessionUserIdSource } from '../interfaces/ez-session-options.interface.js';

/** The most a user id may take as UTF-8: what the `user_id` column holds (`VARBINARY(255)`). */
export const MAX_USER_ID_BYTES = 255;

/**
 * The user id the session names (from its data or its claims), as stored: the value's own text,
 * compared byte for byte. A string or number; anything else (or nothing) is no user id. One too
 * long for the column is refused, never cut: two long ids cut to the same prefix would become one user.
 */
export function userIdOf(source: EzSessionUserIdSource | undefined, data: Record<string, unknown>, claims: Record<string, unknown>): string | null {
  if (!source) return null;
  const fromClaim = !('session' in source);
  const name = 'session' in source ? source.session : source.claim;
  const value = fromClaim ? claims[name] : data[name];
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  const id = String(value);
  const bytes = Buffer.byteLength(id, 'utf8');
  if (bytes > MAX_USER_ID_BYTES) {
    const problem = `is ${bytes} bytes as UTF-8, over the ${MAX_USER_ID_BYTES} a user id may have (the user_id column); it is never cut, since two ids cut alike would be one user. Nothing was written.`;
    throw fromClaim ? new SessionClaimError(`The user id in the claim "${name}" ${problem}`) : new SessionDataError(`The user id in session.${name} ${problem}`);
  }
  return id;
}

/** Whether `id` can be a stored user id at all (longer ones never were written). */
export function fitsUserIdColumn(id: string): boolean {
  return Buffer.byteLength(id, 'utf8') <= MAX_USER_ID_BYTES;
}
