import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpStatus } from '@nestjs/common';
import { SessionDataError, SessionLockTimeoutError, SessionStoreUnavailableError } from '../ez-session.errors.js';
import { EzSessionGraphQLError, graphqlErrorOf, graphqlErrorPatch } from './graphql-error.js';
import { answeredWithErrors } from './graphql-request.js';

describe('EzSession errors in GraphQL', () => {
  it('a lock timeout becomes SESSION_LOCK_TIMEOUT saying when to retry, with the original as its cause', () => {
    const original = new SessionLockTimeoutError(0.5);
    const error = graphqlErrorOf(original) as EzSessionGraphQLError;
    assert.ok(error instanceof EzSessionGraphQLError);
    assert.deepEqual(error.extensions, { code: 'SESSION_LOCK_TIMEOUT', retryAfter: 1 });
    assert.match(error.message, /lock was not obtained within 0.5s/);
    assert.equal(error.cause, original);
  });

  it('a store that cannot be reached becomes SESSION_STORE_UNAVAILABLE', () => {
    const error = graphqlErrorOf(new SessionStoreUnavailableError(new Error('connect ECONNREFUSED'))) as EzSessionGraphQLError;
    assert.deepEqual(error.extensions, { code: 'SESSION_STORE_UNAVAILABLE' });
    assert.equal(error.message, 'The session store is unavailable. Nothing was written; retry the request.');
    assert.doesNotMatch(JSON.stringify({ message: error.message, extensions: error.extensions, stack: error.stack }), /ECONNREFUSED/);
  });

  it('unstorable data is SESSION_DATA_INVALID, and too much of it SESSION_TOO_LARGE', () => {
    assert.equal((graphqlErrorOf(new SessionDataError('Cannot store session.big')) as EzSessionGraphQLError).extensions.code, 'SESSION_DATA_INVALID');
    assert.equal((graphqlErrorOf(new SessionDataError('too big', HttpStatus.PAYLOAD_TOO_LARGE)) as EzSessionGraphQLError).extensions.code, 'SESSION_TOO_LARGE');
  });

  it('errors that are not EzSession\'s pass unchanged', () => {
    const error = new Error('the app failed');
    assert.equal(graphqlErrorOf(error), error);
  });

  it('a failed commit becomes a GraphQL error answer with status 200, no data, and Retry-After for a lock timeout', () => {
    const patch = graphqlErrorPatch(new SessionLockTimeoutError(2));
    assert.equal(patch.kind, 'error');
    assert.equal(patch.kind === 'error' && patch.status, 200);
    const body = JSON.parse(patch.kind === 'error' ? patch.body : '');
    assert.equal(body.data, null);
    assert.deepEqual(body.errors[0].extensions, { code: 'SESSION_LOCK_TIMEOUT', retryAfter: 2 });
    assert.deepEqual(new Map(patch.headers).get('retry-after'), '2');
  });

  it('an unexpected commit failure is INTERNAL_SERVER_ERROR and says nothing of its cause', () => {
    const patch = graphqlErrorPatch(new TypeError('secret detail'));
    const body = JSON.parse(patch.kind === 'error' ? patch.body : '');
    assert.deepEqual(body, { errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }], data: null });
  });
});

describe('whether a GraphQL answer failed', () => {
  it('an answer with errors failed, as text or bytes', () => {
    const text = JSON.stringify({ data: { a: null }, errors: [{ message: 'no' }] });
    assert.equal(answeredWithErrors(text), true);
    assert.equal(answeredWithErrors(Buffer.from(text)), true);
  });

  it('an answer without errors did not, even when its data mentions "errors"', () => {
    assert.equal(answeredWithErrors(JSON.stringify({ data: { text: '"errors":[1]' } })), false);
    assert.equal(answeredWithErrors(JSON.stringify({ data: { ok: true }, errors: [] })), false);
  });

  it('a batch failed when one of its results has errors', () => {
    assert.equal(answeredWithErrors(JSON.stringify([{ data: { ok: true } }, { data: null, errors: [{ message: 'no' }] }])), true);
  });

  it('a streamed or unreadable answer counts as a success', () => {
    assert.equal(answeredWithErrors(undefined), false);
    assert.equal(answeredWithErrors('not json "errors"'), false);
  });
});
