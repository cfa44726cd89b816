import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SessionClient } from '../support/session-client.js';

/**
 * Milliseconds until `client`'s session (revoked elsewhere) reads as empty on its instance, polled
 * every 10 ms with copies of its token; throws after `limitMs`.
 */
export async function refusedWithin(client: SessionClient, limitMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    const answer = await client.fork().get('/me');
    if (answer.status === 200 && Object.keys(answer.body.data).length === 0) return performance.now() - started;
    await sleep(10);
  }
  throw new Error(`the revoked session was still accepted after ${limitMs} ms`);
}

/**
 * 20 parallel writes of different keys, then 20 parallel locked increments, each sent alternately
 * through `one` and `two` (clients of one session on two instances): every key and every increment lands.
 */
export async function assertExactAcrossInstances(one: SessionClient, two: SessionClient): Promise<void> {
  const clients = [one, two];
  const writes = Array.from({ length: 20 }, (_, i) => clients[i % 2].fork().post('/set', { [`k${i}`]: i }));
  assert.deepEqual((await Promise.all(writes)).map((answer) => answer.status), Array(20).fill(200));
  const increments = Array.from({ length: 20 }, (_, i) => clients[i % 2].fork().post('/inc'));
  assert.deepEqual((await Promise.all(increments)).map((answer) => answer.status), Array(20).fill(200));
  const data = (await two.get('/me')).body.data;
  assert.equal(data.n, 20);
  for (let i = 0; i < 20; i++) assert.equal(data[`k${i}`], i);
}
