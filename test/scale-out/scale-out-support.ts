import assert from 'node:assert/strict';
import { before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import type { RunningApp } from '../fixtures/fixture-app.js';
import { closeGate, gate } from '../fixtures/gates.js';
import type { Endpoint } from '../support/endpoint.js';
import { pollUntil } from '../support/poll.js';
import { claimsOf, SessionClient, type SessionResponse } from '../support/session-client.js';
import { StorageCounters } from '../support/storage-counters.js';
import { testEnv } from '../support/test-env.js';
import { TIMEOUTS } from '../support/topology-timeouts.js';

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

/** What the Redis data nodes (every master of a Cluster, or Sentinel's master) and MySQL were sent while `fn` ran. */
export async function sentTo<T>(nodes: readonly Endpoint[], fn: () => Promise<T>): Promise<{ result: T; redis: Record<string, number>; mysql: number; statements: Record<string, number> }> {
  const counters = await Promise.all(nodes.map((node) => StorageCounters.connect(testEnv().mysqlUrl, `redis://${node.host}:${node.port}`)));
  try {
    // Each node's window opens before `fn` and closes after it; MySQL's counts are the innermost window's.
    const measureOn = async (index: number): Promise<{ result: T; redis: Record<string, number>; mysql: number; statements: Record<string, number> }> => {
      if (index === counters.length) return { result: await fn(), redis: {}, mysql: 0, statements: {} };
      const usage = await counters[index].measure(() => measureOn(index + 1));
      const inner = usage.result;
      const redis = { ...inner.redis };
      // ioredis refreshes a Cluster's slot map in the background (CLUSTER SLOTS): no request's doing.
      for (const [command, n] of Object.entries(usage.redis.sent)) if (command !== 'cluster') redis[command] = (redis[command] ?? 0) + n;
      return index === counters.length - 1 ? { result: inner.result, redis, mysql: usage.mysql.queries, statements: usage.mysql.byCommand } : { ...inner, redis };
    };
    return await measureOn(0);
  } finally {
    await Promise.all(counters.map((counter) => counter.close()));
  }
}

/**
 * Resolves once a window on `nodes` and MySQL sees nothing: what the requests before it started
 * (a script load on a new connection, a subscriber's resync after it connected) has finished, so
 * the next window holds only its own request. Polled, not slept: a busy machine only takes longer.
 */
export async function untilQuiet(nodes: readonly Endpoint[]): Promise<void> {
  let last = '';
  await pollUntil(
    'the storage servers to be quiet',
    async () => {
      const { redis, mysql, statements } = await sentTo(nodes, () => sleep(100));
      last = JSON.stringify({ redis, mysql, statements });
      return Object.keys(redis).length === 0 && mysql === 0 ? true : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 0 }
  ).catch((error: Error) => {
    throw new Error(`${error.message}; the last 100 ms window saw ${last}`);
  });
}

/**
 * The per-request storage costs of the README's table, on a shared Redis topology with two
 * instances: each request is sent through the instance that did not serve the one before it.
 */
export function itCostsWhatTheStorageTableSays(
  topology: () => { first: RunningApp; second: RunningApp; dataNodes: () => Promise<readonly Endpoint[]>; cachedRead: Record<string, number> }
): void {
  /** A cached read and then one guarded cache write (EVALSHA). */
  const readThenWrite = () => {
    const { cachedRead } = topology();
    return { ...cachedRead, evalsha: (cachedRead.evalsha ?? 0) + 1 };
  };
  const on = async <T>(fn: () => Promise<T>) => {
    const nodes = await topology().dataNodes();
    await untilQuiet(nodes);
    return sentTo(nodes, fn);
  };
  before(async () => {
    // Connections to every data node open, and their scripts are loaded, on first use: do that
    // before measuring, with sessions on every master (24 spread over 3 masters) through both instances.
    for (let i = 0; i < 24; i++) {
      const one = new SessionClient(topology().first.url);
      await one.post('/set', { warm: i });
      await new SessionClient(topology().second.url, 'cookie', one.token).get('/me');
    }
  }, { timeout: TIMEOUTS.hook });

  const onFirst = () => new SessionClient(topology().first.url);
  /** A client of `client`'s session on the second instance. */
  const onSecond = (client: SessionClient) => new SessionClient(topology().second.url, 'cookie', client.token);

  it('a claims-only read costs no storage I/O on either instance', { timeout: TIMEOUTS.test }, async () => {
    const one = onFirst();
    await one.post('/claims', { role: 'admin' });
    const usage = await on(() => onSecond(one).get('/claims'));
    assert.deepEqual(usage.result.body, { claims: { role: 'admin' } });
    assert.deepEqual({ redis: usage.redis, mysql: usage.mysql }, { redis: {}, mysql: 0 });
  });

  it('a first write is one INSERT and one cache write', { timeout: TIMEOUTS.test }, async () => {
    const usage = await on(() => onFirst().post('/set', { userId: 7 }));
    assert.deepEqual({ redis: usage.redis, mysql: usage.mysql }, { redis: { evalsha: 1 }, mysql: 1 });
    assert.equal(usage.statements.insert, 1);
    assert.equal(claimsOf(usage.result.issued).stored, true);
  });

  it('a stored read through the other instance is one Redis round trip and no MySQL', { timeout: TIMEOUTS.test }, async () => {
    const one = onFirst();
    await one.post('/set', { cart: ['apple'] });
    const two = onSecond(one);
    const usage = await on(() => two.get('/me'));
    assert.deepEqual(usage.result.body, { data: { cart: ['apple'] } });
    assert.deepEqual({ redis: usage.redis, mysql: usage.mysql }, { redis: topology().cachedRead, mysql: 0 });
  });

  it('a later write through the other instance is the read, one UPDATE and one cache write', { timeout: TIMEOUTS.test }, async () => {
    const one = onFirst();
    await one.post('/set', { cart: ['apple'] });
    const usage = await on(() => onSecond(one).post('/set', { coupon: 'SAVE10' }));
    assert.deepEqual({ redis: usage.redis, mysql: usage.mysql }, { redis: readThenWrite(), mysql: 1 });
    assert.equal(usage.statements.update, 1);
    assert.deepEqual((await one.get('/me')).body.data, { cart: ['apple'], coupon: 'SAVE10' });
  });

  it('a locked increment through the other instance is lock-and-read, UPDATE and unlock, and one cache write', { timeout: TIMEOUTS.test }, async () => {
    const one = onFirst();
    await one.post('/inc');
    const usage = await on(() => onSecond(one).post('/inc'));
    assert.deepEqual(usage.result.body, { n: 2 });
    assert.deepEqual({ redis: usage.redis, mysql: usage.mysql }, { redis: { evalsha: 1 }, mysql: 3 });
  });
}

/**
 * 30 parallel writes of one key, alternating `one` and `two` (one session on two instances): every
 * write is acknowledged, and both instances then read the same value, one of those written.
 */
export async function assertLastWriterWinsAcrossInstances(one: SessionClient, two: SessionClient): Promise<void> {
  const writes = Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? one : two).fork().post('/set', { shared: i }));
  assert.deepEqual((await Promise.all(writes)).map((answer) => answer.status), Array(30).fill(200));
  const shared = (await one.fork().get('/me')).body.data.shared;
  assert.ok(Number.isInteger(shared) && shared >= 0 && shared < 30, `left ${shared}`);
  assert.equal((await two.fork().get('/me')).body.data.shared, shared);
}

/**
 * A slow write through `one` while `two` destroys the session: the destroyed id never reads as a
 * session again on either instance (the late write, if kept, went to a new session).
 */
export async function assertDestroyWinsAcrossInstances(one: SessionClient, two: SessionClient): Promise<void> {
  const sid = claimsOf(one.token).sid;
  const name = randomUUID();
  const held = gate(name);
  let answer: SessionResponse;
  try {
    const slow = one.fork().post(`/set-at-gate/${name}`, { late: true });
    // The destroy lands while the write's handler runs: after its request was let in, before it writes.
    await Promise.race([held.reached, slow.then((early) => assert.fail(`the write answered ${early.status} before reaching its gate`))]);
    assert.equal((await two.fork().post('/life/destroy')).status, 200);
    held.open();
    answer = await slow;
  } finally {
    closeGate(name);
  }
  assert.equal(answer.status, 200);
  if (answer.issued) assert.notEqual(claimsOf(answer.issued).sid, sid);
  await sleep(50);
  for (const client of [one, two]) assert.deepEqual((await client.fork().get('/me')).body.data, {});
}
