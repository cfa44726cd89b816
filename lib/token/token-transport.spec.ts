import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { readCookie, readToken, serializeCookie } from './token-transport.js';

const NAME = 'ezsession';
type Cookie = ResolvedOptions['cookie'];
const COOKIE: Cookie = { name: NAME, secure: false, sameSite: 'lax', domain: undefined, path: '/' };

/** The token readToken picks, without its carrier. */
const tokenOf = (headers: Record<string, string>) => readToken(headers, NAME)?.token;

describe('readToken', () => {
  it('says which carrier the token came in', () => {
    assert.deepEqual(readToken({ authorization: 'Bearer a.b.c', cookie: `${NAME}=x.y.z` }, NAME), { token: 'a.b.c', carrier: 'bearer' });
    assert.deepEqual(readToken({ cookie: `${NAME}=x.y.z` }, NAME), { token: 'x.y.z', carrier: 'cookie' });
    assert.equal(readToken({}, NAME), undefined);
  });

  it('passes over a Bearer token that is not ours, for the cookie', () => {
    const ours = (token: string) => token.startsWith('ours.');
    assert.deepEqual(readToken({ authorization: 'Bearer gateway.jwt.sig', cookie: `${NAME}=ours.cookie.sig` }, NAME, ours), { token: 'ours.cookie.sig', carrier: 'cookie' });
    assert.equal(readToken({ authorization: 'Bearer gateway.jwt.sig' }, NAME, ours), undefined);
    assert.deepEqual(readToken({ authorization: 'Bearer ours.bearer.sig', cookie: `${NAME}=ours.cookie.sig` }, NAME, ours), { token: 'ours.bearer.sig', carrier: 'bearer' });
  });

  it('reads the token of an Authorization: Bearer header', () => {
    assert.equal(tokenOf({ authorization: 'Bearer header.token.sig' }), 'header.token.sig');
  });

  it('prefers the Bearer token over the cookie', () => {
    assert.equal(tokenOf({ authorization: 'Bearer from-header', cookie: `${NAME}=from-cookie` }), 'from-header');
  });

  it('accepts the Bearer scheme in any case', () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      assert.equal(tokenOf({ authorization: `${scheme} tok` }), 'tok', scheme);
    }
  });

  it('trims spaces around the Bearer token', () => {
    assert.equal(tokenOf({ authorization: 'Bearer    tok  ' }), 'tok');
  });

  it('falls back to the cookie when the Bearer token is empty', () => {
    assert.equal(tokenOf({ authorization: 'Bearer    ', cookie: `${NAME}=from-cookie` }), 'from-cookie');
    assert.equal(tokenOf({ authorization: 'Bearer ', cookie: `${NAME}=from-cookie` }), 'from-cookie');
  });

  it('falls back to the cookie for another scheme, or "Bearer" without a space', () => {
    assert.equal(tokenOf({ authorization: 'Basic dXNlcjpwYXNz', cookie: `${NAME}=from-cookie` }), 'from-cookie');
    assert.equal(tokenOf({ authorization: 'Bearertok', cookie: `${NAME}=from-cookie` }), 'from-cookie');
  });

  it('reads the cookie when there is no Authorization header', () => {
    assert.equal(tokenOf({ cookie: `theme=dark; ${NAME}=from-cookie` }), 'from-cookie');
  });

  it('gives undefined when the request carries neither', () => {
    assert.equal(tokenOf({}), undefined);
    assert.equal(tokenOf({ authorization: 'Basic x', cookie: 'theme=dark' }), undefined);
  });
});

describe('readCookie', () => {
  it('finds the named cookie among others, spaces around names and values ignored', () => {
    assert.equal(readCookie(`a=1;  ${NAME} = tok ; b=2`, NAME), 'tok');
  });

  it('takes the first of several cookies of the name', () => {
    assert.equal(readCookie(`${NAME}=first; other=x; ${NAME}=second`, NAME), 'first');
  });

  it('searches several Cookie headers in order', () => {
    assert.equal(readCookie(['theme=dark', `${NAME}=first`, `${NAME}=second`], NAME), 'first');
  });

  it('matches the name exactly, case included', () => {
    assert.equal(readCookie(`x${NAME}=a; ${NAME}2=b; EZSESSION=c`, NAME), undefined);
    assert.equal(readCookie(`x${NAME}=a; ${NAME}=d`, NAME), 'd');
  });

  it('removes the double quotes around a quoted value', () => {
    assert.equal(readCookie(`${NAME}="quoted.tok"`, NAME), 'quoted.tok');
    assert.equal(readCookie(`${NAME}=""`, NAME), '');
  });

  it('keeps a lone or unbalanced double quote', () => {
    assert.equal(readCookie(`${NAME}="`, NAME), '"');
    assert.equal(readCookie(`${NAME}="tok`, NAME), '"tok');
  });

  it('keeps "=" inside the value', () => {
    assert.equal(readCookie(`${NAME}=a=b==`, NAME), 'a=b==');
  });

  it('gives undefined without a header, or without the cookie', () => {
    assert.equal(readCookie(undefined, NAME), undefined);
    assert.equal(readCookie('', NAME), undefined);
    assert.equal(readCookie(`novalue; =tok; ${NAME}`, NAME), undefined);
  });
});

describe('serializeCookie', () => {
  it("marks the cookie Secure as the request decided when cookie.secure is 'auto'", () => {
    const auto: Cookie = { ...COOKIE, secure: 'auto' };
    assert.match(serializeCookie(auto, 'tok', 60, true), /; HttpOnly; Secure; SameSite=Lax$/);
    assert.doesNotMatch(serializeCookie(auto, 'tok', 60, false), /Secure/);
    assert.doesNotMatch(serializeCookie(auto, 'tok', 60), /Secure/, 'no request said HTTPS');
  });

  it('writes the value, Max-Age, Path, HttpOnly and SameSite by default', () => {
    assert.equal(serializeCookie(COOKIE, 'tok', 7200), 'ezsession=tok; Max-Age=7200; Path=/; HttpOnly; SameSite=Lax');
  });

  it('adds Domain and Secure when configured, in that order', () => {
    const cookie: Cookie = { ...COOKIE, name: '__Secure-s', secure: true, sameSite: 'strict', domain: '.example.com', path: '/app' };
    assert.equal(serializeCookie(cookie, 'tok', 60), '__Secure-s=tok; Max-Age=60; Path=/app; Domain=.example.com; HttpOnly; Secure; SameSite=Strict');
  });

  it('capitalizes SameSite=None', () => {
    assert.match(serializeCookie({ ...COOKIE, secure: true, sameSite: 'none' }, 'tok', 60), /; Secure; SameSite=None$/);
  });

  it('rounds Max-Age down to whole seconds and never below 0', () => {
    assert.match(serializeCookie(COOKIE, 'tok', 59.9), /; Max-Age=59;/);
    assert.match(serializeCookie(COOKIE, 'tok', -5), /; Max-Age=0;/);
  });

  it('clears the cookie with an empty value and Max-Age=0', () => {
    assert.equal(serializeCookie(COOKIE, '', 0), 'ezsession=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax');
  });
});
