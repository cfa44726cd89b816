import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADAPTERS, startFixtureApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { claimsOf, SessionClient } from '../support/session-client.js';

for (const adapter of ADAPTERS) {
  describe(`flash data (${adapter})`, () => {
    let running: RunningApp;
    before(async () => (running = await startFixtureApp(adapter, realStoreOptions())));
    after(async () => running?.close());

    for (const transport of ['cookie', 'bearer'] as const) {
      it(`a value set in one request is readable then and in the next request that reads it, then gone (${transport})`, async () => {
        const client = new SessionClient(running.url, transport);
        const set = await client.post('/flash', { key: 'notice', value: 'Saved' });
        assert.deepEqual(set.body, { now: 'Saved' });
        assert.deepEqual((await client.get('/flash/notice')).body, { value: 'Saved' });
        assert.deepEqual((await client.get('/flash/notice')).body, { value: null });
      });
    }

    it('requests that do not read flash leave it waiting', async () => {
      const client = new SessionClient(running.url);
      await client.post('/flash', { key: 'notice', value: 'Saved' });
      await client.get('/me');
      await client.get('/plain');
      assert.deepEqual((await client.get('/flash/notice')).body, { value: 'Saved' });
    });

    it('peek reads without consuming', async () => {
      const client = new SessionClient(running.url);
      await client.post('/flash', { key: 'notice', value: 'Saved' });
      assert.deepEqual((await client.get('/flash-peek/notice')).body, { value: 'Saved' });
      assert.deepEqual((await client.get('/flash/notice')).body, { value: 'Saved' });
      assert.deepEqual((await client.get('/flash/notice')).body, { value: null });
    });

    it('keep holds a read value for one more request', async () => {
      const client = new SessionClient(running.url);
      await client.post('/flash', { key: 'notice', value: 'Saved' });
      assert.deepEqual((await client.get('/flash-keep/notice')).body, { value: 'Saved' });
      assert.deepEqual((await client.get('/flash/notice')).body, { value: 'Saved' });
      assert.deepEqual((await client.get('/flash/notice')).body, { value: null });
    });

    it('values set in different requests expire independently', async () => {
      const client = new SessionClient(running.url);
      await client.post('/flash', { key: 'first', value: 1 });
      assert.deepEqual((await client.get('/flash/first')).body, { value: 1 });
      await client.post('/flash', { key: 'second', value: 2 });
      assert.deepEqual((await client.get('/flash-all')).body, { values: { second: 2 } });
      assert.deepEqual((await client.get('/flash-all')).body, { values: {} });
    });

    it('a value set again after it was read is delivered again', async () => {
      const client = new SessionClient(running.url);
      await client.post('/flash', { key: 'notice', value: 'one' });
      assert.deepEqual((await client.get('/flash/notice')).body, { value: 'one' });
      await client.post('/flash', { key: 'notice', value: 'two' });
      assert.deepEqual((await client.get('/flash/notice')).body, { value: 'two' });
    });

    it('once the last flash value is read, a session with no other data stops being stored', async () => {
      const client = new SessionClient(running.url);
      await client.post('/flash', { key: 'notice', value: 'Saved' });
      assert.equal(claimsOf(client.token).stored, true);
      const read = await client.get('/flash/notice');
      assert.equal(claimsOf(read.issued).stored, false);
    });

    it('flash values never show up in the session data', async () => {
      const client = new SessionClient(running.url);
      await client.post('/set', { userId: 1 });
      await client.post('/flash', { key: 'notice', value: 'Saved' });
      assert.deepEqual((await client.get('/me')).body, { data: { userId: 1 } });
    });
  });
}
