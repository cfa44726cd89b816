import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sidPrefix, StoreErrorLog } from './store-error-log.js';

function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3330'), { code: 'ECONNREFUSED' });
}

describe('StoreErrorLog', () => {
  const sid = '7c4f2a1e-9b3d-4e6f-8a0c-2d4e6f8a0c1b';

  it('logs the first failure of a kind at once, with the driver detail, the operation and a short session id', () => {
    const lines: string[] = [];
    new StoreErrorLog({ error: (line) => lines.push(line) }, 10_000, () => 0).report(refused(), { operation: 'UPDATE `ez_sessions`', sid });
    assert.deepEqual(lines, [
      'Session store unavailable (ECONNREFUSED) in UPDATE `ez_sessions` of session 7c4f2a1e…: connect ECONNREFUSED 127.0.0.1:3330; clients were answered 503 SESSION_STORE_UNAVAILABLE'
    ]);
    assert.ok(!lines[0].includes(sid));
  });

  it('logs at most one line per kind per interval, and the next one counts those left out', () => {
    const lines: string[] = [];
    let now = 0;
    const log = new StoreErrorLog({ error: (line) => lines.push(line) }, 10_000, () => now);
    for (let i = 0; i < 1000; i++) {
      now = i * 5; // 1000 failures in 5 s
      log.report(refused(), { operation: 'connect' });
    }
    assert.equal(lines.length, 1);
    now = 10_000;
    log.report(refused(), { operation: 'connect' });
    assert.equal(lines.length, 2);
    assert.match(lines[1], /\(999 more ECONNREFUSED failures in the last 10 s not logged\)/);
    now = 10_001;
    log.report(refused(), { operation: 'connect' });
    assert.equal(lines.length, 2);
  });

  it('keeps kinds apart: another driver code, an errno, a timeout', () => {
    const lines: string[] = [];
    const log = new StoreErrorLog({ error: (line) => lines.push(line) }, 10_000, () => 0);
    log.report(refused(), { operation: 'connect' });
    log.report(Object.assign(new Error("Incorrect string value: '\\xF0' for column `user_id`"), { code: 'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD', errno: 1366 }), { operation: 'INSERT INTO `t`' });
    log.report(Object.assign(new Error('Lost connection'), { errno: 2013 }), { operation: 'SELECT `t`' });
    log.report(new Error('the database did not answer within 1000 ms'), { operation: 'SELECT `t`' });
    log.report(new AggregateError([refused(), refused()]), { operation: 'connect' });
    assert.deepEqual(
      lines.map((line) => /unavailable \(([^)]+)\)/.exec(line)?.[1]),
      ['ECONNREFUSED', 'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD', 'errno 2013', 'TIMEOUT', 'ERROR']
    );
    assert.match(lines[4], /connect ECONNREFUSED 127.0.0.1:3330; connect ECONNREFUSED/);
  });

  it('shortens a session id to its first 8 characters', () => {
    assert.equal(sidPrefix(sid), '7c4f2a1e…');
  });
});
