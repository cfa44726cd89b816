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
