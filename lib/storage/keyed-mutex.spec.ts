import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { KeyedMutex } from './keyed-mutex.js';

const LONG = 5_000;

/** An acquire whose outcome can be looked at before it settles. */
function waiter(mutex: KeyedMutex, key: string, timeoutMs = LONG) {
  const state: { release?: () => void; settled: boolean } = { settled: false };
  const done = mutex.acquire(key, timeoutMs).then((release) => {
    state.settled = true;
    state.release = release;
    return release;
  });
  return Object.assign(state, { done });
}

/** Lets every promise job and timer callback that is due run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await turn();
}

describe('KeyedMutex', () => {
  it('gives a free key at once', async () => {
    const release = await new KeyedMutex().acquire('s1', LONG);
    assert.equal(typeof release, 'function');
  });

  it('makes a second caller of the key wait until the first releases', async () => {
    const mutex = new KeyedMutex();
    const first = await mutex.acquire('s1', LONG);
    const second = waiter(mutex, 's1');
    await settle();
    assert.equal(second.settled, false);
    first!();
    assert.equal(typeof (await second.done), 'function');
  });

  it('serves the callers of one key in the order they came', async () => {
    const mutex = new KeyedMutex();
    const order: string[] = [];
    const holder = await mutex.acquire('s1', LONG);
    const queued = ['a', 'b', 'c'].map((name) =>
      mutex.acquire('s1', LONG).then((release) => {
        order.push(name);
        // Each holds the key across a turn of the event loop, as a store write would.
        return turn().then(() => release!());
      })
    );
    holder!();
    await Promise.all(queued);
    assert.deepEqual(order, ['a', 'b', 'c']);
  });

  it('lets exactly one caller hold a key at a time', async () => {
    const mutex = new KeyedMutex();
    let holding = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        const release = await mutex.acquire('s1', LONG);
        most = Math.max(most, ++holding);
        await turn();
        holding--;
        release!();
      })
    );
    assert.equal(most, 1);
  });

  it('keeps the key locked for a caller that comes after it was passed on', async () => {
    const mutex = new KeyedMutex();
    const first = await mutex.acquire('s1', LONG);
    const second = waiter(mutex, 's1');
    first!();
    await second.done;
    const late = waiter(mutex, 's1');
    await settle();
    assert.equal(late.settled, false);
    second.release!();
    assert.equal(typeof (await late.done), 'function');
  });

  it('does not make callers of other keys wait', async () => {
    const mutex = new KeyedMutex();
    await mutex.acquire('s1', LONG);
    const other = waiter(mutex, 's2');
    await settle();
    assert.equal(other.settled, true);
    assert.equal(typeof other.release, 'function');
  });

  it('gives undefined once the timeout passes with the key still held', async () => {
    const mutex = new KeyedMutex();
    await mutex.acquire('s1', LONG);
    const startedAt = performance.now();
    assert.equal(await mutex.acquire('s1', 30), undefined);
    assert.ok(performance.now() - startedAt >= 29, 'gave up before the timeout');
  });

  it('still passes the key on, in order, behind a caller that timed out', async () => {
    const mutex = new KeyedMutex();
    const holder = await mutex.acquire('s1', LONG);
    const impatient = mutex.acquire('s1', 20);
    const patient = waiter(mutex, 's1');
    assert.equal(await impatient, undefined);
    await settle();
    assert.equal(patient.settled, false, 'the caller behind the timed-out one got the key while it was still held');
    holder!();
    assert.equal(typeof (await patient.done), 'function');
  });

  it('ignores a second release by the same holder', async () => {
    const mutex = new KeyedMutex();
    const first = await mutex.acquire('s1', LONG);
    const second = waiter(mutex, 's1');
    const third = waiter(mutex, 's1');
    first!();
    await second.done;
    first!();
    await settle();
    assert.equal(third.settled, false);
    second.release!();
    assert.equal(typeof (await third.done), 'function');
  });

  it('leaves no timer running once the key is given', async () => {
    const mutex = new KeyedMutex();
    const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const before = timers();
    const first = await mutex.acquire('s1', LONG);
    const second = waiter(mutex, 's1');
    first!();
    await second.done;
    assert.equal(timers(), before);
  });

  it('forgets a key once nobody holds or waits for it', async () => {
    const mutex = new KeyedMutex();
    const first = await mutex.acquire('s1', LONG);
    const timedOut = mutex.acquire('s1', 10);
    const second = waiter(mutex, 's1');
    await timedOut;
    first!();
    (await second.done)!();
    await settle();
    // One entry per session id ever locked would grow without bound.
    assert.equal((mutex as unknown as { tails: Map<string, unknown> }).tails.size, 0);
  });
});
