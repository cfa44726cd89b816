import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisClusterServer } from '../test/support/redis-cluster.js';
import { RedisSentinelServer } from '../test/support/redis-sentinel.js';
import { APPS } from './definitions.js';
import { startApp, type AppProcess } from './processes.js';
import type { BenchContext } from './runner.js';

export type RevocationTopology = 'standalone' | 'cluster' | 'sentinel';
export const REVOCATION_TOPOLOGIES: RevocationTopology[] = ['standalone', 'cluster', 'sentinel'];

export interface RevocationResult {
  topology: RevocationTopology;
  revocations: number;
  /** Milliseconds from the start of `revoke()` on one instance to the other instance knowing the id. */
  p50: number;
  p99: number;
  max: number;
  /** Revocations the other instance had not heard of a second after the last one. */
  missed: number;
}

/**
 * Revocation across two EzSession app processes on one MariaDB and the given Redis topology:
 * `count` revocations, one after another, on the first instance; for each, how long until the
 * second instance's registry knows it (both stamp the time from the same machine clock).
 */
export async function measureRevocations(context: BenchContext, topology: RevocationTopology, count: number): Promise<RevocationResult> {
  const { redis, stop } = await startTopology(context, topology);
  const apps: AppProcess[] = [];
  try {
    const env = { BENCH_MYSQL_URL: context.mysqlUrl, BENCH_REDIS_URL: context.redisUrl, BENCH_REDIS_OPTION: JSON.stringify(redis) };
    for (let i = 0; i < 2; i++) apps.push(await startApp(APPS.ezsession, { root: context.root, env }));
    const [first, second] = apps;
    await sleep(500); // both subscribed
    const started = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const sid = randomUUID();
      const answer = (await (await fetch(`${first.controlUrl}/revoke?sid=${sid}`)).json()) as { startedAt: number };
      started.set(sid, answer.startedAt);
    }
    await sleep(1_000);
    const heard = (await (await fetch(`${second.controlUrl}/heard`)).json()) as Record<string, number>;
    const delays = [...started].filter(([sid]) => heard[sid] !== undefined).map(([sid, at]) => heard[sid] - at).sort((a, b) => a - b);
    const rank = (p: number) => delays[Math.min(delays.length - 1, Math.ceil((p / 100) * delays.length) - 1)] ?? Number.NaN;
    return { topology, revocations: count, p50: rank(50), p99: rank(99), max: delays.at(-1) ?? Number.NaN, missed: count - delays.length };
  } finally {
    await Promise.all(apps.map((app) => app.stop()));
    await stop();
  }
}

async function startTopology(context: BenchContext, topology: RevocationTopology): Promise<{ redis: unknown; stop: () => Promise<void> }> {
  if (topology === 'standalone') return { redis: context.redisUrl, stop: async () => undefined };
  if (topology === 'cluster') {
    const cluster = new RedisClusterServer();
    await cluster.start();
    return { redis: { cluster: cluster.startupNodes }, stop: () => cluster.stop() };
  }
  const sentinel = new RedisSentinelServer();
  await sentinel.start();
  return { redis: sentinel.sentinelOptions, stop: () => sentinel.stop() };
}
