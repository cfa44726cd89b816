import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadRequestException, HttpException } from '@nestjs/common';
import { SessionDataError, SessionLockTimeoutError, SessionStoreUnavailableError } from '../ez-session.errors.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { errorPatch, NO_PATCH, tokenHeaders } from './response-patch.js';

const OPTIONS: Pick<ResolvedOptions, 'cookie' | 'headerName'> = {
  cookie: { name: 'ezsession', secure: true, sameSite: 'lax', domain: undefined, path: '/' },
  headerName: 'x-session-token'
};
const JSON_HEADERS: Array<[string, string]> = [
  ['content-type', 'application/json; charset=utf-8'],
  ['cache-control', 'no-store']
];

describe('tokenHeaders', () => {
  it('adds nothing when no token was issued', () => {
    assert.deepEqual(tokenHeaders(OPTIONS, undefined), { kind: 'headers', headers: [] });
    assert.equal(tokenHeaders(OPTIONS, undefined), NO_PATCH);
  });

  it('sends a new token as a cookie and in the token header, and forbids caching the answer', () => {
    assert.deepEqual(tokenHeaders(OPTIONS, { token: 'new.jwt.sig', maxAge: 7200 }), {
      kind: 'headers',
      headers: [
        ['set-cookie', 'ezsession=new.jwt.sig; Max-Age=7200; Path=/; HttpOnly; Secure; SameSite=Lax'],
        ['x-session-token', 'new.jwt.sig'],
        ['cache-control', 'no-store']
      ]
    });
  });

  it('clears the cookie, sends no token header, and forbids caching the answer', () => {
    assert.deepEqual(tokenHeaders(OPTIONS, { clear: true }), {
      kind: 'headers',
      headers: [
        ['set-cookie', 'ezsession=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax'],
        ['cache-control', 'no-store']
      ]
    });
  });
});

describe('errorPatch', () => {
  it("answers an HttpException with its status and its response as Nest's JSON body", () => {
    const error = new HttpException({ statusCode: 409, error: 'Conflict', message: 'taken', detail: { field: 'name' } }, 409);
    assert.deepEqual(errorPatch(error), {
      kind: 'error',
      status: 409,
      body: '{"statusCode":409,"error":"Conflict","message":"taken","detail":{"field":"name"}}',
      headers: JSON_HEADERS
    });
  });

  it('wraps a string response as { statusCode, message }, as Nest does', () => {
    const patch = errorPatch(new HttpException('Not today', 418));
    assert.equal(patch.kind, 'error');
    assert.equal(patch.kind === 'error' && patch.status, 418);
    assert.equal(patch.kind === 'error' && patch.body, '{"statusCode":418,"message":"Not today"}');
  });

  it("gives Nest's built-in exceptions their usual body", () => {
    const patch = errorPatch(new BadRequestException('bad input'));
    assert.deepEqual(patch.kind === 'error' && JSON.parse(patch.body), { statusCode: 400, error: 'Bad Request', message: 'bad input' });
  });

  it('answers a lock timeout with 503 and a Retry-After of the lock timeout, rounded up to whole seconds', () => {
    const error = new SessionLockTimeoutError(2.5);
    assert.deepEqual(errorPatch(error), {
      kind: 'error',
      status: 503,
      body: JSON.stringify({ statusCode: 503, error: 'SessionLockTimeout', code: 'SESSION_LOCK_TIMEOUT', message: 'The session is busy: its lock was not obtained within 2.5s. Nothing was written; retry the request.' }),
      headers: [...JSON_HEADERS, ['retry-after', '3']]
    });
    const patch = errorPatch(new SessionLockTimeoutError(0.1));
    assert.deepEqual(patch.headers.at(-1), ['retry-after', '1']);
  });

  it("answers a store failure with a generic message and a stable code, never the driver's text", () => {
    const patch = errorPatch(new SessionStoreUnavailableError(new Error("connect ECONNREFUSED 127.0.0.1:3330; Incorrect string value for column `user_id` in ez_sessions (utf8mb4_bin)")));
    assert.deepEqual(patch.kind === 'error' && JSON.parse(patch.body), {
      statusCode: 503,
      error: 'SessionStoreUnavailable',
      code: 'SESSION_STORE_UNAVAILABLE',
      message: 'The session store is unavailable. Nothing was written; retry the request.'
    });
  });

  it('gives no Retry-After to other 503s', () => {
    const patch = errorPatch(new SessionStoreUnavailableError(new Error('connect ECONNREFUSED')));
    assert.equal(patch.kind === 'error' && patch.status, 503);
    assert.deepEqual(patch.headers, JSON_HEADERS);
  });

  it('answers a session over maxSessionBytes with 413', () => {
    const patch = errorPatch(new SessionDataError('too big', 413));
    assert.equal(patch.kind === 'error' && patch.status, 413);
    assert.equal(patch.kind === 'error' && patch.body, '{"statusCode":413,"error":"SessionDataError","code":"SESSION_TOO_LARGE","message":"too big"}');
  });

  it('answers anything else with a plain 500 that does not tell what went wrong', () => {
    for (const error of [new Error('password=hunter2 in the connection string'), new TypeError('x is undefined'), 'a string', undefined, { status: 400 }]) {
      assert.deepEqual(errorPatch(error), { kind: 'error', status: 500, body: '{"statusCode":500,"message":"Internal server error"}', headers: JSON_HEADERS });
    }
  });
});
