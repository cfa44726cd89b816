import assert from 'node:assert/strict';
import { createHmac, createSecretKey } from 'node:crypto';
import { describe, it } from 'node:test';
import { SessionTokenCodec } from './session-token.codec.js';

const key = (secret: string, id?: string) => ({ id, key: createSecretKey(Buffer.from(secret, 'utf8')) });
const KEY = key('unit-test-secret-5d1c9e7a3b2f4a6c8e0d1b3f5a7c9e2d');
const NOW = 1_800_000_000;
const SID = '3f0e1c1a-2b3c-4d5e-8f90-1a2b3c4d5e6f';

function codec(keys = [KEY], clockSkew = 30, parties: { issuer?: string; audience?: string } = {}): SessionTokenCodec {
  return new SessionTokenCodec({ keys, clockSkew, ...parties });
}

const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token signed with KEY's secret, with any header and payload. */
function forged(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${part(header)}.${part(payload)}`;
  return `${input}.${createHmac('sha256', 'unit-test-secret-5d1c9e7a3b2f4a6c8e0d1b3f5a7c9e2d').update(input).digest('base64url')}`;
}

const partsOf = (jwt: string) => jwt.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>);

function token(custom: Record<string, unknown> = { role: 'admin' }, issued = NOW, signer = codec()): string {
  return signer.sign({ sid: SID, stored: true, exp: issued + 3600, sct: issued, fp: undefined, custom }, issued);
}

describe('SessionTokenCodec', () => {
  describe('type, issuer, audience, crit', () => {
    it('signs with a typ of its own, and refuses a token of any other typ or none, 0.1.0\'s "JWT" included', () => {
      const [header, payload] = partsOf(token());
      assert.deepEqual(header, { alg: 'HS256', typ: 'ezsession+jwt' });
      assert.ok(codec().verify(forged(header, payload), NOW).valid, 'the forger reproduces a genuine token');
      for (const typ of ['JWT', 'at+jwt', 'EZSESSION+JWT', undefined, 1]) {
        assert.deepEqual(codec().verify(forged({ alg: 'HS256', ...(typ === undefined ? {} : { typ }) }, payload), NOW), { valid: false, reason: 'malformed' }, String(typ));
      }
    });

    it('refuses any crit header, even an empty one or one naming nothing it could understand', () => {
      const [header, payload] = partsOf(token());
      for (const crit of [['exp'], [], ['b64'], 'exp']) {
        assert.deepEqual(codec().verify(forged({ ...header, crit, b64: true, exp: 1 }, payload), NOW), { valid: false, reason: 'malformed' }, JSON.stringify(crit));
      }
    });

    it('puts iss and aud into its tokens and accepts them back', () => {
      const app = codec([KEY], 30, { issuer: 'https://a.example', audience: 'a' });
      const signed = token({ role: 'x' }, NOW, app);
      assert.deepEqual(partsOf(signed)[1], { role: 'x', sid: SID, stored: true, iat: NOW, exp: NOW + 3600, sct: NOW, iss: 'https://a.example', aud: 'a' });
      const verdict = app.verify(signed, NOW);
      assert.ok(verdict.valid);
      assert.deepEqual(verdict.claims.custom, { role: 'x' }, 'iss and aud are not custom claims');
    });

    it('refuses a token of another issuer or audience sharing the secret, or with none, or with one when none is configured', () => {
      const a = codec([KEY], 30, { issuer: 'https://a.example', audience: 'a' });
      const cases: Array<[string, SessionTokenCodec, SessionTokenCodec]> = [
        ['another issuer', codec([KEY], 30, { issuer: 'https://b.example', audience: 'a' }), a],
        ['another audience', codec([KEY], 30, { issuer: 'https://a.example', audience: 'b' }), a],
        ['no issuer or audience', codec(), a],
        ['only the issuer', codec([KEY], 30, { issuer: 'https://a.example' }), a],
        ['an issuer where none is configured', a, codec()],
        ['an audience where none is configured', codec([KEY], 30, { audience: 'a' }), codec()]
      ];
      for (const [what, signer, verifier] of cases) {
        assert.deepEqual(verifier.verify(token({}, NOW, signer), NOW), { valid: false, reason: 'malformed' }, what);
        assert.equal(verifier.isOurs(token({}, NOW, signer)), false, what);
      }
      const [header, payload] = partsOf(token({}, NOW, a));
      assert.deepEqual(a.verify(forged(header, { ...payload, aud: ['a'] }), NOW), { valid: false, reason: 'malformed' }, 'an audience array');
    });

    it('keeps verifying tokens of a retired key with issuer and audience set (rotation)', () => {
      const parties = { issuer: 'https://a.example', audience: 'a' };
      const old = key('old-unit-secret-0a1b2c3d4e5f6a7b8c9d0e1f2a3b', 'old');
      const signed = token({}, NOW, codec([old], 30, parties));
      const verdict = codec([key('new-unit-secret-9f8e7d6c5b4a3f2e1d0c9b8a7f6e', 'new'), old], 30, parties).verify(signed, NOW);
      assert.ok(verdict.valid);
      assert.equal(verdict.key, 1);
    });

    it('tells its own tokens from others, whether or not they are still in force', () => {
      const c = codec();
      assert.equal(c.isOurs(token()), true);
      assert.equal(c.isOurs(token({}, NOW - 100_000)), true, 'expired, still ours');
      assert.equal(c.isOurs('opaque-api-key'), false);
      assert.equal(c.isOurs(forged({ alg: 'HS256', typ: 'JWT' }, partsOf(token())[1])), false, 'a JWT of another type');
      assert.equal(c.isOurs(token({}, NOW, codec([key('another-unit-secret-8a6c4e2b0d9f7a5c3e1b8d6f')]))), false, 'another key');
    });
  });

  it('verifies what it signed and gives back the claims', () => {
    const verdict = codec().verify(token(), NOW);
    assert.ok(verdict.valid);
    assert.deepEqual(verdict.claims, { sid: SID, stored: true, iat: NOW, exp: NOW + 3600, sct: NOW, fp: undefined, custom: { role: 'admin' } });
  });

  it('refuses a signature whose last character differs only in the bits base64url decoding ignores', () => {
    const genuine = token();
    const last = genuine.at(-1)!;
    // Same 6-bit group except the two low bits: decodes to the same 32 bytes.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) + 1];
    assert.deepEqual(Buffer.from(genuine.slice(-43, -1) + twin, 'base64url'), Buffer.from(genuine.slice(-43), 'base64url'));
    assert.deepEqual(codec().verify(genuine.slice(0, -1) + twin, NOW), { valid: false, reason: 'signature' });
  });

  it('refuses a token signed with another key', () => {
    const other = codec([key('another-unit-secret-8a6c4e2b0d9f7a5c3e1b8d6f')]);
    assert.deepEqual(codec().verify(token({}, NOW, other), NOW), { valid: false, reason: 'signature' });
  });

  it('checks expiry every time, also for a token it verified before', () => {
    const verifier = codec();
    const genuine = token();
    assert.equal(verifier.verify(genuine, NOW).valid, true);
    assert.deepEqual(verifier.verify(genuine, NOW + 3600 + 31), { valid: false, reason: 'expired', sid: SID });
  });

  it('refuses a token issued in the future beyond the clock skew, also after accepting it once', () => {
    const verifier = codec();
    const early = token({}, NOW + 20);
    assert.equal(verifier.verify(early, NOW).valid, true);
    assert.deepEqual(verifier.verify(early, NOW - 20), { valid: false, reason: 'malformed' });
  });

  describe('time checks, against the time the caller gives (whole seconds of the session clock)', () => {
    /** A token issued at NOW that expires an hour later, with `claims` over the usual ones. */
    function issued(claims: { iat?: number; sct?: number; exp?: number; nbf?: number } = {}): string {
      const { iat = NOW, sct = NOW, exp = NOW + 3600, nbf } = claims;
      return codec().sign({ sid: SID, stored: true, exp, sct, fp: undefined, custom: nbf === undefined ? {} : { nbf } }, iat);
    }
    const verdict = (token: string, at: number, clockSkew: number) => codec([KEY], clockSkew).verify(token, at);

    it('signs the time it is given as iat', () => {
      const verified = verdict(issued({ iat: NOW - 5 }), NOW, 0);
      assert.ok(verified.valid);
      assert.equal(verified.claims.iat, NOW - 5);
    });

    it('accepts a token until clockSkew seconds past its exp and refuses it from that second on', () => {
      const token = issued();
      assert.equal(verdict(token, NOW + 3600 + 29, 30).valid, true);
      assert.deepEqual(verdict(token, NOW + 3600 + 30, 30), { valid: false, reason: 'expired', sid: SID });
    });

    it('without clock skew, refuses a token from the second of its exp', () => {
      const token = issued();
      assert.equal(verdict(token, NOW + 3599, 0).valid, true);
      assert.deepEqual(verdict(token, NOW + 3600, 0), { valid: false, reason: 'expired', sid: SID });
    });

    it('accepts an iat up to clockSkew seconds ahead and refuses one further ahead', () => {
      assert.equal(verdict(issued({ iat: NOW + 30 }), NOW, 30).valid, true);
      assert.deepEqual(verdict(issued({ iat: NOW + 31 }), NOW, 30), { valid: false, reason: 'malformed' });
    });

    it('refuses a session creation time (sct) further ahead than clockSkew', () => {
      assert.equal(verdict(issued({ sct: NOW + 30 }), NOW, 30).valid, true);
      assert.deepEqual(verdict(issued({ sct: NOW + 31 }), NOW, 30), { valid: false, reason: 'malformed' });
    });

    it('refuses a token before its nbf, less clockSkew', () => {
      const token = issued({ nbf: NOW + 60 });
      assert.deepEqual(verdict(token, NOW + 29, 30), { valid: false, reason: 'malformed' });
      assert.equal(verdict(token, NOW + 30, 30).valid, true);
    });

    it('decides again at every call: a token refused as early is accepted once its time has come', () => {
      const verifier = codec([KEY], 0);
      const token = issued({ iat: NOW + 10 });
      assert.deepEqual(verifier.verify(token, NOW), { valid: false, reason: 'malformed' });
      assert.equal(verifier.verify(token, NOW + 10).valid, true);
    });
  });

  it('gives every request its own copy of the claims, nested values included', () => {
    const verifier = codec();
    const genuine = token({ prefs: { theme: 'dark' }, role: 'admin' });
    const first = verifier.verify(genuine, NOW);
    assert.ok(first.valid);
    (first.claims.custom.prefs as Record<string, unknown>).theme = 'light';
    first.claims.custom.role = 'changed';
    const second = verifier.verify(genuine, NOW);
    assert.ok(second.valid);
    assert.deepEqual(second.claims.custom, { prefs: { theme: 'dark' }, role: 'admin' });
  });

  it('refuses a token with a prototype key among its claims', () => {
    const signer = codec();
    const forged = signer.sign({ sid: SID, stored: true, exp: NOW + 60, sct: NOW, fp: undefined, custom: JSON.parse('{"__proto__": {"admin": true}}') }, NOW);
    assert.deepEqual(signer.verify(forged, NOW), { valid: false, reason: 'malformed' });
  });

  it('accepts a token of an older key of the ring and says which key verified it', () => {
    const old = key('old-unit-test-secret-1f3e5d7c9b2a4c6e8d0f', 'old');
    const current = key('new-unit-test-secret-2e4d6c8a0b1f3e5d7c9a', 'new');
    const verdict = codec([current, old]).verify(token({}, NOW, codec([old])), NOW);
    assert.ok(verdict.valid);
    assert.equal(verdict.key, 1);
  });
});
