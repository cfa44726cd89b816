import { createHash, randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { Command, type Cluster, type Redis } from 'ioredis';
import type { SessionTelemetry } from '../observability/session-telemetry.js';
import { FILL_IF_LEASED, READ_CURRENT, SET_IF_NEWER, TAKE_LEASE } from './cache-scripts.js';
import { LEASE_MS, SessionCache, decodeCached, encodeUnstamped, type CachedSession } from './session-cache.js';

/**
 * Redis cache (a single server, Sentinel, or a Cluster): one script call per stored read and per
 * write (their checks run in Redis, so they cost no extra round trip; see cache-scripts.ts), one
 * DEL per removal; a miss adds a lease and the guarded refill. On one server (standalone or
 * Sentinel) the reads one event-loop turn asks for go out as one script, which checks the master's
 * reign once for all of them. When a write or DEL fails, Redis may
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
  /** Reads waiting for this event-loop turn's read script (one server only). */
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
    const info = await (this.client as Redis).info('replication').catch(() => '');
    const replid = /^role:master\r?$/m.test(info) ? /^master_replid:(\w+)/m.exec(info)?.[1] : undefined;
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
      // A bounded script: a burst of thousands of reads must not hold Redis up for one long script.
      if (this.batch.length === MAX_BATCH) this.readBatch();
    }).then(decodeCached);
  }

  /**
   * One script for every read of this turn: one INFO for all of them. Sent at once rather than
   * through auto-pipelining, which would hold it for one more turn.
   */
  private readBatch(): void {
    const batch = this.batch;
    if (!batch) return; // sent already, full
    this.batch = undefined;
    const keys = batch.map((read) => read.key);
    const connection = this.connection;
    const send = (name: 'evalsha' | 'eval', script: string) => {
      const command = new Command(name, [script, keys.length, ...keys], { replyEncoding: 'utf8' });
      // One round trip for the whole batch, however many requests share it.
      this.telemetry.roundTrip('redis', name === 'evalsha' ? 'EVALSHA' : 'EVAL');
      void (this.client as Redis).sendCommand(command);
      return command.promise as Promise<Array<string | null>>;
    };
    send('evalsha', scriptSha(READ_CURRENT))
      .catch((error: unknown) => {
        if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
        return send('eval', READ_CURRENT);
      })
      .then(
        (result) => {
          if (connection === this.connection) this.reign = result[0] ?? '';
          if (!result[0]) this.seekMaster();
          for (let i = 0; i < batch.length; i++) batch[i].resolve(result[i + 1] ?? null);
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
      await this.script(SET_IF_NEWER, this.keyPrefix + sid, [this.reign, String(value.version), encodeUnstamped(value), String(Math.floor(ttlMs))]);
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

/** Reads per read script at most: about 100 µs of Redis time. */
const MAX_BATCH = 128;

const SCRIPTS = [READ_CURRENT, SET_IF_NEWER, TAKE_LEASE, FILL_IF_LEASED];
const shas = new Map<string, string>();
function scriptSha(source: string): string {
  let sha = shas.get(source);
  if (!sha) shas.set(source, (sha = createHash('sha1').update(source).digest('hex')));
  return sha;
}
