import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ResolvedOptions, SigningKey } from '../options/resolved-options.js';
import { RESERVED_CLAIMS, SID_PATTERN, type SessionClaims, type TokenVerdict } from './session-claims.js';

/** Browsers drop a cookie whose name and value exceed 4096 bytes (RFC 6265bis). */
export const MAX_TOKEN_BYTES = 4096;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;
/**
 * The `typ` of EzSession's tokens (RFC 8725 section 3.11): another kind of JWT signed with the same
 * secret (a password-reset token, 0.1.0's `typ: "JWT"`) is never taken for a session token.
 */
export const TOKEN_TYPE = 'ezsession+jwt';
/** How many genuine tokens `verify` remembers (about 1 KB each); the oldest is forgotten first. */
const GENUINE_TOKENS_KEPT = 10_000;

/** What a genuine token says, before the time checks; `customJson` is set when a claim is an object or array (copied deeply). */
interface GenuineToken {
  sid: string;
  stored: boolean;
  iat: number;
  exp: number;
  sct: number;
  fp: string | undefined;
  nbf: number | undefined;
  key: number;
  custom: Readonly<Record<string, unknown>>;
  customJson: string | undefined;
}

/** The 43rd character of a 32-byte base64url value carries 4 bits: those with the 2 spare bits zero. */
const CANONICAL_LAST_CHARACTER = new Set([...'AEIMQUYcgkosw048'].map((c) => c.charCodeAt(0)));

/**
 * HS256 compact JWS, written against node:crypto rather than a JWT library: the verifier pins the
 * one algorithm, requires `exp`, rejects future `iat`, checks the claim shapes, and runs on
 * KeyObjects (jsonwebtoken probes string secrets with createPublicKey, about 1 ms per call).
 */
export class SessionTokenCodec {
  private readonly signer: SigningKey;
  private readonly verifiers: Map<string | undefined, number>;
  private readonly signingHeader: string;
  private readonly signingHeaderClaims: Record<string, unknown>;
  private readonly genuine = new Map<string, GenuineToken>();

  private readonly issuer: string | undefined;
  private readonly audience: string | undefined;
  private readonly parties: { iss?: string; aud?: string };

  constructor(private readonly options: Pick<ResolvedOptions, 'keys' | 'clockSkew'> & Partial<Pick<ResolvedOptions, 'issuer' | 'audience'>>) {
    this.signer = options.keys[0];
    this.verifiers = new Map(options.keys.map((k, index) => [k.id, index]));
    this.issuer = options.issuer;
    this.audience = options.audience;
    this.parties = { ...(this.issuer === undefined ? {} : { iss: this.issuer }), ...(this.audience === undefined ? {} : { aud: this.audience }) };
    const header = this.signer.id === undefined ? { alg: 'HS256', typ: TOKEN_TYPE } : { alg: 'HS256', typ: TOKEN_TYPE, kid: this.signer.id };
    this.signingHeader = base64url(JSON.stringify(header));
    this.signingHeaderClaims = header;
  }

  /** A token issued at `now` (whole seconds of the session clock), its `iat`. */
  sign(claims: Omit<SessionClaims, 'iat'>, now: number): string {
    const { sid, stored, exp, sct, fp } = claims;
    const payload = base64url(JSON.stringify({ ...claims.custom, sid, stored, iat: now, exp, sct, ...(fp === undefined ? {} : { fp }), ...this.parties }));
    const input = `${this.signingHeader}.${payload}`;
    return `${input}.${mac(this.signer, input).toString('base64url')}`;
  }

  /** The claims of a genuine token in force at `now` (whole seconds of the session clock), or why it is refused; never throws. */
  verify(token: string | undefined, now: number): TokenVerdict {
    if (!token) return { valid: false, reason: 'absent' };
    const genuine = this.genuineToken(token);
    return 'reason' in genuine ? genuine : this.inForce(genuine, now);
  }

  /**
   * Whether `token` was issued by this app (its type, issuer, audience, one of its keys), whether
   * or not it is still in force: a Bearer token that is not is someone else's (a gateway's, another
   * service's) and must not hide the session cookie.
   */
  isOurs(token: string): boolean {
    return !('reason' in this.genuineToken(token));
  }

  private genuineToken(token: string): GenuineToken | Extract<TokenVerdict, { valid: false }> {
    let genuine = this.genuine.get(token);
    if (genuine === undefined) {
      const checked = this.authenticate(token);
      if ('reason' in checked) return checked;
      genuine = checked;
      if (this.genuine.size >= GENUINE_TOKENS_KEPT) this.genuine.delete(this.genuine.keys().next().value as string);
      this.genuine.set(token, genuine);
    }
    return genuine;
  }

  /**
   * Structure, signature and claim shapes: what never changes for a given token. A client sends
   * the same token until it gets a new one, so the answer is kept for tokens found genuine (and only
   * for those: no one can fill the memo without tokens this app signed); an HMAC, costing about
   * 10 µs in a busy process, is then paid once per token rather than once per request.
   */
  private authenticate(token: string): GenuineToken | Extract<TokenVerdict, { valid: false }> {
    if (token.length > MAX_TOKEN_BYTES || !COMPACT_JWS.test(token)) return { valid: false, reason: 'malformed' };
    const [headerPart, payloadPart, signaturePart] = token.split('.');
    // Tokens this instance signed carry its own header: no need to decode it again.
    const header = headerPart === this.signingHeader ? this.signingHeaderClaims : parseObject(headerPart);
    if (!header || header.alg !== 'HS256' || header.typ !== TOKEN_TYPE) return { valid: false, reason: 'malformed' };
    // RFC 7515 section 4.1.11: a `crit` names extensions the verifier must understand; EzSession understands none.
    if ('crit' in header) return { valid: false, reason: 'malformed' };
    if (header.kid !== undefined && typeof header.kid !== 'string') return { valid: false, reason: 'malformed' };
    const keyIndex = this.verifiers.get(header.kid as string | undefined);
    if (keyIndex === undefined) return { valid: false, reason: 'signature' };
    // Base64url decoding ignores the last character's two spare bits: only the one canonical
    // spelling of a signature is accepted, as a text comparison would, without encoding the MAC.
    if (!CANONICAL_LAST_CHARACTER.has(signaturePart.charCodeAt(42))) return { valid: false, reason: 'signature' };
    const expected = mac(this.options.keys[keyIndex], token.slice(0, headerPart.length + 1 + payloadPart.length));
    if (!timingSafeEqual(Buffer.from(signaturePart, 'base64url'), expected)) return { valid: false, reason: 'signature' };

    const payload = parseObject(payloadPart);
    if (!payload) return { valid: false, reason: 'malformed' };
    const { sid, stored, iat, exp, sct, fp, nbf } = payload;
    if (typeof sid !== 'string' || !SID_PATTERN.test(sid) || typeof stored !== 'boolean') return { valid: false, reason: 'malformed' };
    if (!isNumericDate(iat) || !isNumericDate(exp) || !isNumericDate(sct)) return { valid: false, reason: 'malformed' };
    if (fp !== undefined && typeof fp !== 'string') return { valid: false, reason: 'malformed' };
    if (nbf !== undefined && !isNumericDate(nbf)) return { valid: false, reason: 'malformed' };
    // Exactly the configured value, or none when none is configured: another app sharing the secret is another issuer.
    if (payload.iss !== this.issuer || payload.aud !== this.audience) return { valid: false, reason: 'malformed' };

    const custom: Record<string, unknown> = {};
    let flat = true;
    for (const name of Object.keys(payload)) {
      // EzSession never signs these (they are refused when set); copying one would set custom's prototype.
      if (name === '__proto__' || name === 'constructor' || name === 'prototype') return { valid: false, reason: 'malformed' };
      if (RESERVED_CLAIMS.has(name)) continue;
      custom[name] = payload[name];
      if (payload[name] !== null && typeof payload[name] === 'object') flat = false;
    }
    return { sid, stored, iat, exp, sct, fp, nbf, key: keyIndex, custom, customJson: flat ? undefined : JSON.stringify(custom) };
  }

  /** The time checks, which depend on when the token is presented; the claims come as a fresh copy the request may change. */
  private inForce(genuine: GenuineToken, now: number): TokenVerdict {
    const { sid, stored, iat, exp, sct, fp, nbf, key } = genuine;
    const skew = this.options.clockSkew;
    if (iat - skew > now || sct - skew > now) return { valid: false, reason: 'malformed' };
    if (nbf !== undefined && nbf - skew > now) return { valid: false, reason: 'malformed' };
    if (exp + skew <= now) return { valid: false, reason: 'expired', sid };
    const custom = genuine.customJson === undefined ? { ...genuine.custom } : (JSON.parse(genuine.customJson) as Record<string, unknown>);
    return { valid: true, claims: { sid, stored, iat, exp, sct, fp, custom }, key };
  }

  /** Keyed hash of what a session is bound to, with the key that verified its token (so rotation keeps bindings). */
  fingerprint(binding: string, key = 0): string {
    return mac(this.options.keys[key], `ezsession-binding\0${binding}`).subarray(0, 16).toString('base64url');
  }

}

function mac(key: SigningKey, input: string): Buffer {
  return createHmac('sha256', key.key).update(input).digest();
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function parseObject(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value < 1e11;
}
