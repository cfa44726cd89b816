import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionStoreUnavailableError } from '../ez-session.errors.js';
import { wsErrorOf } from './ws-error.js';

describe('wsErrorOf', () => {
  it("gives a store failure to the socket client as a stable code and a generic message, without the driver's text", async () => {
    const error = (await wsErrorOf(new SessionStoreUnavailableError(new Error('connect ECONNREFUSED 127.0.0.1:3330')))) as { getError(): unknown };
    assert.deepEqual(error.getError(), { status: 'error', code: 'SESSION_STORE_UNAVAILABLE', message: 'The session store is unavailable. Nothing was written; retry the request.' });
  });
});
