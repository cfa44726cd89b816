import { createHash, randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { Command, type Cluster, type Redis } from 'ioredis';
import type { SessionTelemetry } from '../observability/session-telemetry.js';
import { FILL_IF_LEASED, READ_CURRENT, SET_IF_NEWER, TAKE_LEASE } from './cache-scripts.js';
import { LEASE_MS, SessionCache, decodeCached, encodeCached, encodeUnstamped, type CachedSession } from './session-cache.js';

/**
 * Redis cache (a single server, Sentinel, or a Cluster): one round trip per stored read and one
 * script call per write (their checks run in Redis, so they cost no extra round trip; see
 * cache-scripts.ts), one DEL per removal; a miss adds a lease and the guarded refill. On one server
 * (standalone or Sentinel) the reads one event-loop turn asks for go out as one MULTI / INFO / MGET /
 * EXEC, which checks the master's reign once for all of them; on a Cluster each key is one read
 * script on its own master. When a write or DEL fails, Redis may
 * still hold the value it replaced; such sessions are read from MySQL and their keys deleted as
 * soon as Redis answers again, before any cached read. Every key is one session's alone, so every
 * write and every script on a Cluster is single-key.
 */
export class RedisSessionCache extends SessionCache {
  private readonly logger = new Logger('EzSession');
  /** Sessions whose cache entry may be stale, with the generation of their last failure. */
  private readonly stale = new Map<string, number>();
  private generation = 0;
  private purging: Promise<void> | undefined;
  private lastWarning = -Infinity;
  /** A Cluster routes each key to its own master: its reads go one script per key, and its writes read the reign themselves. */
  private readonly cluster: boolean;
  /** Reads waiting for this event-loop turn's read transaction (one server only). */
  private batch: Array<{ key: string; resolve: (text: string | null) => void }> | undefined;
  /** The replication id the connected master last reported on this connection, for stamping writes; '' when unknown. */
  private reign = '';
  /** Moves on whenever the connection closes: a reply is trusted for `reign` only if it came on the connection it was sent on. */
  private connection = 0;
  private lastSeek = -Infinity;

  constructor(
    private readonly client: Redis | Cluster,
    private readonly keyPrefix: string,
    private readonly telemetry: SessionTelemetry
  ) {
    super();
    this.cluster = (client as Cluster).isCluster === true;
    client.on('close', () => {
      this.connection++;
      this.reign = '';
    });
    telemetry.cacheSystem = 'redis';
    client.on('ready', () => {
      void this.purgeStale();
      // Loaded ahead, so that the first write after a start or a Redis restart is one EVALSHA, not a NOSCRIPT and an EVAL.
      for (const source of SCRIPTS) void this.client.script('LOAD', source).catch(() => undefined);
      if (!this.cluster) void this.learnReign();
    });
    if (client.status === 'ready') client.emit('ready');
  }

  /** The reign of the master just connected to, so that the first writes need no INFO of their own. */
  private async learnReign(): Promise<void> {
    const connection = this.connection;
    const replid = masterReign(await (this.client as Redis).info('replication').catch(() => ''));
    if (replid && connection === this.connection) this.reign = replid;
  }

  get(sid: string): Promise<CachedSession | undefined> {
    if (this.stale.size > 0) return this.purgeStale().then(() => (this.stale.has(sid) ? undefined : this.read(sid)));
    return this.read(sid);
  }

  // Plain promise callbacks, not an async function: this runs on every stored read.
  private read(sid: string): Promise<CachedSession | undefined> {
    if (this.cluster) {
      return this.script(READ_CURRENT, this.keyPrefix + sid, []).then(
        (result) => decodeCached((result as Array<string | null>)[1]),
        (error: unknown) => {
          this.warn('read', error);
          return undefined;
        }
      );
    }
    return new Promise<string | null>((resolve) => {
      if (!this.batch) {
        this.batch = [];
        setImmediate(() => this.readBatch());
      }
      this.batch.push({ key: this.keyPrefix + sid, resolve });
      // A bounded transaction: a burst of thousands of reads must not hold Redis up for one long MGET.
      if (this.batch.length === MAX_BATCH) this.readBatch();
    }).then(decodeCached);
  }

  /**
   * One transaction for every read of this turn, `MULTI / INFO replication / MGET / EXEC`: one
   * INFO for all of them, and the entries go from Redis to the reply without passing through Lua
   * (a read script copied each value into Lua and back: ~0.3 µs of server time a key, four times
   * what the MGET costs). EXEC runs INFO and MGET back to back on one node, so the reign checked is
   * the one the entries were read in, as atomic as a script. Sent at once rather than through
   * auto-pipelining, which would hold it for one more turn.
   */
  private readBatch(): void {
    const batch = this.batch;
    if (!batch) return; // sent already, full
    this.batch = undefined;
    const keys = batch.map((read) => read.key);
    const connection = this.connection;
    const client = this.client as Redis;
    const exec = new Command('exec', [], { replyEncoding: 'utf8' });
    // One round trip for the whole batch, however many requests share it.
    this.telemetry.roundTrip('redis', 'MULTI');
    // Queued replies (OK, QUEUED) carry nothing; a failure of any part fails EXEC, which is what is read.
    // A raw Command gets the client's own keyPrefix only when told, as ioredis's methods pass it.
    // Corked: the four go out in one write, one segment, as the one command of a script did.
    client.stream?.cork();
    for (const command of [new Command('multi', []), new Command('info', ['replication']), new Command('mget', keys, { keyPrefix: client.options.keyPrefix })]) {
      void client.sendCommand(command);
      command.promise.catch(ignore);
    }
    void client.sendCommand(exec);
    client.stream?.uncork();
    (exec.promise as Promise<[unknown, unknown] | null>).then(
      (replies) => {
        const reign = replies ? masterReign(replies[0]) : undefined;
        const values = replies?.[1];
        if (connection === this.connection) this.reign = reign ?? '';
        if (reign === undefined || !Array.isArray(values)) {
          this.seekMaster();
          for (const read of batch) read.resolve(null);
          return;
        }
        for (let i = 0; i < batch.length; i++) batch[i].resolve(stampedIn(values[i], reign));
      },
      (error: unknown) => {
        this.warn('read', error);
        for (const read of batch) read.resolve(null);
      }
    );
  }

  async set(sid: string, value: CachedSession, ttlMs: number): Promise<void> {
    if (ttlMs < 1) return this.delete(sid);
    try {
      // Stamped here when the reign is known, so that Redis stores the argument as it came.
      const reign = this.reign;
      const entry = reign ? encodeCached(value, reign) : encodeUnstamped(value);
      await this.script(SET_IF_NEWER, this.keyPrefix + sid, [reign, String(value.version), entry, String(Math.floor(ttlMs))]);
    } catch (error) {
      this.markStale(sid, 'write', error);
    }
  }

  async lease(sid: string): Promise<string | undefined> {
    if (this.stale.has(sid)) return undefined;
    const lease = `lease:${randomBytes(9).toString('base64url')}`;
    try {
      return Number(await this.script(TAKE_LEASE, this.keyPrefix + sid, [this.reign, lease, String(LEASE_MS)])) === 1 ? lease : undefined;
    } catch (error) {
      this.warn('lease', error);
      return undefined;
    }
  }

  async fill(sid: string, lease: string, value: CachedSession, ttlMs: number): Promise<void> {
    if (ttlMs < 1 || this.stale.has(sid)) return;
    try {
      await this.script(FILL_IF_LEASED, this.keyPrefix + sid, [this.reign, lease, String(value.version), encodeUnstamped(value), String(Math.floor(ttlMs))]);
    } catch (error) {
      this.warn('refill', error);
    }
  }

  async delete(sid: string): Promise<void> {
    this.telemetry.roundTrip('redis', 'DEL');
    try {
      await this.client.del(this.keyPrefix + sid);
    } catch (error) {
      this.markStale(sid, 'delete', error);
    }
  }

  /**
   * The server answered as a replica: a demoted master that kept this connection. Its reads are
   * misses (the script serves nothing on a replica); a Sentinel client is sent to ask the Sentinels
   * for the current master, at most once a second.
   */
  private seekMaster(): void {
    const client = this.client as Redis;
    if (!client.options?.sentinels?.length || performance.now() - this.lastSeek < 1_000) return;
    this.lastSeek = performance.now();
    client.disconnect(true);
  }

  /** EVALSHA, and EVAL once when the server does not know the script yet (after a restart, on a new cluster node). */
  private script(source: string, key: string, args: string[]): Promise<unknown> {
    this.telemetry.roundTrip('redis', 'EVALSHA');
    return this.client.evalsha(scriptSha(source), 1, key, ...args).catch((error: unknown) => {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      this.telemetry.roundTrip('redis', 'EVAL');
      return this.client.eval(source, 1, key, ...args);
    });
  }

  private markStale(sid: string, operation: string, error: unknown): void {
    this.stale.set(sid, ++this.generation);
    this.warn(operation, error);
  }

  private purgeStale(): Promise<void> {
    if (this.stale.size === 0) return Promise.resolve();
    this.purging ??= (async () => {
      const purged = [...this.stale];
      try {
        // One DEL per key, not one DEL of many: in a Redis Cluster the keys live on different nodes.
        await Promise.all(purged.map(([sid]) => (this.telemetry.roundTrip('redis', 'DEL'), this.client.del(this.keyPrefix + sid))));
        // A failure recorded while these DELs were in flight has a newer generation and stays.
        for (const [sid, generation] of purged) if (this.stale.get(sid) === generation) this.stale.delete(sid);
      } catch {
        // Still unreachable: these sessions keep bypassing the cache until a purge succeeds.
      }
    })().finally(() => (this.purging = undefined));
    return this.purging;
  }

  // One line per 10 s at most: an outage must not flood the log with a line per request.
  private warn(operation: string, error: unknown): void {
    const now = performance.now();
    if (now - this.lastWarning < 10_000) return;
    this.lastWarning = now;
    this.logger.warn(`Redis ${operation} failed, serving from the database: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * The replication id of the reign an INFO replication reply names, or `undefined` unless it comes
 * from a master: a replica (a demoted master that kept this connection) serves nothing.
 */
function masterReign(info: unknown): string | undefined {
  if (typeof info !== 'string' || !/^role:master\r?$/m.test(info)) return undefined;
  return /^master_replid:(\w+)/m.exec(info)?.[1];
}

/**
 * An entry, if it was stored in `reign`: `v<version>.<reign>\n...`. Anything else (another reign's
 * entry, which a new master may have inherited from before a failover; a lease; an entry without a
 * stamp) reads as a miss.
 */
function stampedIn(value: unknown, reign: string): string | null {
  if (typeof value !== 'string' || value.charCodeAt(0) !== 118 /* v */) return null;
  const dot = value.indexOf('.', 1);
  if (dot < 0 || value.lastIndexOf('\n', dot) >= 0 || value.charCodeAt(dot + 1 + reign.length) !== 10 /* \n */ || !value.startsWith(reign, dot + 1)) return null;
  return value;
}

function ignore(): void {}

/** Reads per transaction at most: a bounded MGET, so that a burst of thousands cannot hold Redis up. */
const MAX_BATCH = 128;

const SCRIPTS = [READ_CURRENT, SET_IF_NEWER, TAKE_LEASE, FILL_IF_LEASED];
const shas = new Map<string, string>();
function scriptSha(source: string): string {
  let sha = shas.get(source);
  if (!sha) shas.set(source, (sha = createHash('sha1').update(source).digest('hex')));
  return sha;
}
