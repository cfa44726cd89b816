// `npm run bench:redis-floor`: what each shape of cache command costs the Redis server itself, with
// no app and no network wait in the way: a throwaway redis-server, one connection, commands pipelined
// 500 at a time, and the server's own CPU (its main thread's, from /proc) per request. (INFO
// commandstats' times are no measure here: a script's or EXEC's time includes the commands it ran,
// which are counted again on their own.) It is the floor under the bench's "Redis server CPU"
// column: the bench adds one event-loop wakeup per round trip, this leaves that out. README,
// Benchmarks, cites it.
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { READ_CURRENT, SET_IF_NEWER } from '../lib/cache/cache-scripts.js';
import { encodeCached, type CachedSession } from '../lib/cache/session-cache.js';
import { RedisServer } from '../test/support/redis-server.js';

const KEYS = 256;
const REQUESTS = 20_000;
const PIPELINE = 500;

/** One shape of request: how to queue one call of it on a pipeline, for request number `request`. */
interface Shape {
  name: string;
  /** Requests one call of `queue` stands for (a batch of reads is several). */
  perCall: number;
  queue(pipeline: ReturnType<Redis['pipeline']>, request: number): void;
}

const server = new RedisServer();
await server.start();
const client = new Redis(server.url);
try {
  const reign = /^master_replid:(\w+)/m.exec(await client.info('replication'))![1];
  // The bench's small session: a 10-item cart.
  const session = (version: number): CachedSession => ({
    version,
    expiresAt: Date.now() + 3_600_000,
    data: JSON.stringify({ cart: Array.from({ length: 10 }, (_, i) => ({ sku: `SKU-${i}`, qty: i, name: `Item number ${i}` })) }),
    flash: '{}'
  });
  for (let i = 0; i < KEYS; i++) await client.set(`k${i}`, encodeCached(session(1), reign));
  const sha = async (source: string) => (await client.script('LOAD', source)) as string;
  const setIfNewer = await sha(SET_IF_NEWER);
  const readCurrent = await sha(READ_CURRENT);
  const emptyScript = await sha('return 1');
  let version = 10;
  const key = (request: number) => `k${request % KEYS}`;
  const keys = (request: number, n: number) => Array.from({ length: n }, (_, j) => key(request + j));
  /** A newer version's entry each time: SET_IF_NEWER always writes, as a committed write's cache write does. */
  const entry = () => encodeCached(session(++version), reign);

  const shapes: Shape[] = [
    { name: 'express-session read: GET + PEXPIRE', perCall: 1, queue: (p, r) => p.get(key(r)).pexpire(key(r), 86_400_000) },
    { name: 'express-session write: GET + SET', perCall: 1, queue: (p, r) => p.get(key(r)).set(key(r), entry(), 'PX', 86_400_000) },
    ...[1, 16].flatMap((n): Shape[] => [
      { name: `EzSession read, batch of ${n}: MULTI / INFO / MGET / EXEC`, perCall: n, queue: (p, r) => p.call('multi').info('replication').mget(keys(r, n)).call('exec') },
      { name: `EzSession read, batch of ${n}: the read script (the Cluster's, and this release's before)`, perCall: n, queue: (p, r) => p.evalsha(readCurrent, n, ...keys(r, n)) }
    ]),
    {
      name: 'EzSession write: EVALSHA SET_IF_NEWER (GETRANGE, SET)',
      perCall: 1,
      queue: (p, r) => {
        const value = entry();
        p.evalsha(setIfNewer, 1, key(r), reign, String(version), value, '86400000');
      }
    },
    { name: 'floor of any script: EVALSHA of `return 1`, same arguments', perCall: 1, queue: (p, r) => p.evalsha(emptyScript, 1, key(r), reign, String(++version), entry(), '86400000') },
    { name: 'a write with no version check: SET', perCall: 1, queue: (p, r) => p.set(key(r), entry(), 'PX', 86_400_000) }
  ];

  // The server's main thread's CPU time in ns (/proc/<pid>/schedstat): exact, and read without sending
  // Redis a command that would count in the window (as INFO cpu would).
  const pid = Number(/process_id:(\d+)/.exec(await client.info('server'))![1]);
  const cpuNanos = async () => Number((await readFile(`/proc/${pid}/schedstat`, 'utf8')).split(' ')[0]);

  console.log(`redis-server ${(/redis_version:(\S+)/.exec(await client.info('server')) ?? [])[1]}, ${REQUESTS} requests a shape, pipelined ${PIPELINE} at a time\n`);
  console.log('| Shape | server CPU µs / request |');
  console.log('| --- | --: |');
  for (const shape of shapes) {
    // Warm: the first pass pays for allocations the later ones reuse.
    for (const measured of [false, true]) {
      const cpuBefore = await cpuNanos();
      for (let sent = 0; sent < REQUESTS; sent += PIPELINE * shape.perCall) {
        const pipeline = client.pipeline();
        for (let i = 0; i < PIPELINE; i++) shape.queue(pipeline, sent + i * shape.perCall);
        await pipeline.exec();
      }
      const cpu = ((await cpuNanos()) - cpuBefore) / 1000;
      if (measured) console.log(`| ${shape.name} | ${(cpu / REQUESTS).toFixed(2)} |`);
    }
  }
} finally {
  client.disconnect();
  await server.stop();
}
