import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ResolvedOptions, SigningKey } from '../options/resolved-options.js';
import { RESERVED_CLAIMS, SID_PATTERN, type SessionClaims } from './session-claims.js';

/** Browsers drop a cookie whose name and value exceed 4096 bytes (RFC 6265bis). */
export const MAX_TOKEN_BYTES = 4096;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;

/**
 * HS256 compact JWS, written against node:crypto rather than a JWT library: the verifier pins the
 * one algorithm, requires `exp`, rejects future `iat`, checks the claim shapes, and runs on
 * KeyObjects (jsonwebtoken probes string secrets with createPublicKey, about 1 ms per call).
 */
export class SessionTokenCodec {
  private readonly signer: SigningKey;
  private readonly verifiers: Map<string | undefined, SigningKey>;
  private readonly signingHeader: string;

  constructor(private readonly options: Pick<ResolvedOptions, 'keys' | 'clockSkew'>) {
    this.signer = options.keys[0];
    this.verifiers = new Map(options.keys.map((k) => [k.id, k]));
    const header = this.signer.id === undefined ? { alg: 'HS256', typ: 'JWT' } : { alg: 'HS256', typ: 'JWT', kid: this.signer.id };
    this.signingHeader = base64url(JSON.stringify(header));
  }

  sign(claims: Omit<SessionClaims, 'iat'>, now = nowSeconds()): string {
    const payload = base64url(JSON.stringify({ ...claims.custom, sid: claims.sid, stored: claims.stored, iat: now, exp: claims.exp }));
    const input = `${this.signingHeader}.${payload}`;
    return `${input}.${mac(this.signer, input).toString('base64url')}`;
  }

  /** The claims of a genuine, unexpired token; `undefined` for anything else, never a throw. */
  verify(token: string | undefined, now = nowSeconds()): SessionClaims | undefined {
    if (!token || token.length > MAX_TOKEN_BYTES || !COMPACT_JWS.test(token)) return undefined;
    const [headerPart, payloadPart, signaturePart] = token.split('.');
    const header = parseObject(headerPart);
    if (!header || header.alg !== 'HS256' || (header.typ !== undefined && header.typ !== 'JWT')) return undefined;
    if (header.kid !== undefined && typeof header.kid !== 'string') return undefined;
    const key = this.verifiers.get(header.kid as string | undefined);
    if (!key) return undefined;
    // Compared as canonical text: base64url decoding is lenient in its last character.
    const expected = Buffer.from(mac(key, `${headerPart}.${payloadPart}`).toString('base64url'));
    if (!timingSafeEqual(Buffer.from(signaturePart), expected)) return undefined;

    const payload = parseObject(payloadPart);
    if (!payload) return undefined;
    const { sid, stored, iat, exp } = payload;
    if (typeof sid !== 'string' || !SID_PATTERN.test(sid) || typeof stored !== 'boolean') return undefined;
    if (!isNumericDate(iat) || !isNumericDate(exp)) return undefined;
    const skew = this.options.clockSkew;
    if (exp + skew <= now || iat - skew > now) return undefined;
    if (payload.nbf !== undefined && (!isNumericDate(payload.nbf) || payload.nbf - skew > now)) return undefined;

    const custom: Record<string, unknown> = {};
    for (const name of Object.keys(payload)) {
      if (!RESERVED_CLAIMS.has(name)) custom[name] = payload[name];
    }
    return { sid, stored, iat, exp, custom };
  }

  /** Whether this token was signed with a key other than the current signing key. */
  signedWithOldKey(token: string): boolean {
    const kid = parseObject(token.slice(0, token.indexOf('.')))?.kid;
    return kid !== this.signer.id;
  }
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
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
