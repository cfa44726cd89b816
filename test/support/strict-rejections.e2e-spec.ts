import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

// npm test runs every spec with --unhandled-rejections=strict (through NODE_OPTIONS), so a promise
// the library leaves unhandled fails the run instead of passing unnoticed.
describe('the test run', () => {
  it('fails a process on an unhandled rejection even when something listens for them', () => {
    const script = "process.on('unhandledRejection', () => {}); Promise.reject(new Error('left unhandled')); setTimeout(() => {}, 50);";
    const child = spawnSync(process.execPath, ['-e', script], { env: process.env, encoding: 'utf8' });
    assert.notEqual(child.status, 0, 'the rejection was swallowed: NODE_OPTIONS lacks --unhandled-rejections=strict');
    assert.match(child.stderr, /left unhandled/);
  });
});
