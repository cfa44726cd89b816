import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { EZ_SESSION_CLOCK } from '../clock/session-clock.js';
import { EZ_SESSION_OPTIONS, EZ_SESSION_REDIS } from '../ez-session.constants.js';
import type { EzSessionClock } from '../interfaces/ez-session-options.interface.js';
import { SessionTelemetry } from '../observability/session-telemetry.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { SessionRepository } from '../storage/session.repository.js';

/** The Redis connection in use, if any, and whether EzSession created it. */
export interface SessionRedis {
  client: Redis | Cluster | undefined;
  owned: boolean;
}

/**
 * Revoked session ids, kept in memory so that checking a token costs no I/O, also for tokens
 * that never stored anything. MySQL holds the durable record (loaded at boot, and re-read every
 * `revocationSyncInterval` seconds in case a message was missed); Redis pub/sub tells the other
 * instances at once: on a Redis Cluster through sharded pub/sub (SPUBLISH to the node that owns the
 * channel's slot), where the server has it, else a cluster-wide PUBLISH.
 */
const SUBSCRIBE_AT_BOOT_MS = 5_000;
const LATE = Symbol('late');

@Injectable()
export class RevocationRegistry implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('EzSession');
  private readonly revoked = new Map<string, number>();
  /** Per-user cut-offs (`revokeAllForUser`), by userKey: sessions created before `cutoff` (seconds) are refused until `until` (ms). */
  private readonly users = new Map<string, { cutoff: number; until: number }>();
  /** The session `revokeAllForUser(id, { except })` spared, by exemptionKey, for the cut-off it was spared from. */
  private readonly exemptions = new Map<string, { cutoff: number; until: number }>();
  /** userKey of recent user ids: a request of a revoked user's app hashes its id once, not on every request. */
  private readonly keysOf = new Map<string, string>();
  private readonly listeners = new Set<(sid: string) => void>();
  private readonly channel: string;
  private subscriber: Redis | Cluster | undefined;
  private sharded = false;
  private syncedAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    private readonly repository: SessionRepository,
    @Inject(EZ_SESSION_REDIS) private readonly redis: SessionRedis,
    @Inject(EZ_SESSION_CLOCK) private readonly clock: EzSessionClock,
    private readonly telemetry: SessionTelemetry
  ) {
    this.channel = `${options.keyPrefix}revoked`;
    telemetry.trackRevocationsHeld(() => this.revoked.size);
  }

  async onModuleInit(): Promise<void> {
    await this.resync();
    if (this.redis.client) await this.subscribeWithin(this.redis.client, SUBSCRIBE_AT_BOOT_MS);
    if (this.options.revocationSyncInterval > 0) {
      this.timer = setInterval(() => void this.resync().catch(() => undefined), this.options.revocationSyncInterval * 1000);
      this.timer.unref();
    }
  }

  /** How many revocations (ids, users, exemptions) this instance holds in memory (expired ones go at the next sync). */
  get size(): number {
    return this.revoked.size + this.users.size + this.exemptions.size;
  }

  /**
   * Whether a session's user was logged out everywhere after the session began: its id (from the
   * `userId` claim) has a cut-off later than the session's creation (`sct`, seconds), and this
   * session was not the one spared. No I/O; nothing to do while no user has been revoked.
   */
  refusesUser(sid: string, sct: number, claims: Readonly<Record<string, unknown>>): boolean {
    if (this.users.size === 0) return false;
    const source = this.options.userId;
    if (!source || !('claim' in source)) return false;
    const value = claims[source.claim];
    if (typeof value !== 'string' && typeof value !== 'number') return false;
    const id = String(value);
    const key = this.userKey(id);
    const cut = this.users.get(key);
    if (!cut || sct >= cut.cutoff) return false;
    if (cut.until <= this.clock.now()) {
      this.users.delete(key);
      return false;
    }
    // Nothing spared (the usual case): no hash to compute on this session's every request.
    return this.exemptions.size === 0 || this.exemptions.get(exemptionKey(id, sid))?.cutoff !== cut.cutoff;
  }

  has(sid: string): boolean {
    const until = this.revoked.get(sid);
    if (until === undefined) return false;
    if (until > this.clock.now()) return true;
    this.revoked.delete(sid);
    return false;
  }

  /**
   * Calls `listener` with each id revoked from now on, as soon as this instance learns of it: here,
   * from another instance over Redis, or from the database at a sync. Returns the unsubscribe.
   */
  onRevoked(listener: (sid: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records a revocation here and tells the other instances; the caller has written the tombstone. */
  async announce(sid: string, until: number): Promise<void> {
    this.remember(sid, until);
    this.telemetry.count('revocationsSent');
    const client = this.redis.client;
    if (!client) return;
    // The time it was sent, for the receivers' propagation delay; a release that reads two fields ignores it.
    await this.publish(client, `${sid} ${until} ${this.clock.now()}`);
  }

  /**
   * Records a per-user cut-off here and tells the other instances: every session of `userId`
   * created before `cutoff` (seconds) is refused, but the one whose id is `except`. The caller has
   * written the rows; one message carries the cut-off and its exemption, so no instance ever has
   * the one without the other.
   */
  async announceUser(userId: string, cutoff: number, until: number, except?: string): Promise<void> {
    const key = this.userKey(userId);
    const spared = except === undefined ? undefined : exemptionKey(userId, except);
    this.rememberUser(key, cutoff, until, spared);
    this.telemetry.count('revocationsSent');
    const client = this.redis.client;
    if (!client) return;
    await this.publish(client, `${key} ${until} ${cutoff}${spared ? ` ${spared}` : ''}`);
  }

  private async publish(client: NonNullable<SessionRedis['client']>, message: string): Promise<void> {
    await (this.sharded ? (client as Cluster).spublish(this.channel, message) : client.publish(this.channel, message)).catch((error: Error) => {
      this.logger.warn(`Could not announce a revocation over Redis (${error.message}); other instances learn it at their next sync`);
    });
  }

  /** Re-reads tombstones written since the last sync (with a margin for clock differences) and drops expired ones. */
  async resync(): Promise<void> {
    const startedAt = this.clock.now();
    const rows = await this.repository.revokedSince(this.syncedAt - 60_000);
    // Exemptions before cut-offs: a cut-off is never in force here without the exemption written with it.
    for (const { sid, until, revokedAt } of rows) if (sid.startsWith(EXEMPTION)) this.rememberSpared(sid, revokedAt / 1000, until);
    for (const { sid, until, revokedAt } of rows) {
      if (sid.startsWith(USER)) this.rememberUser(sid, revokedAt / 1000, until, undefined);
      else if (!sid.startsWith(EXEMPTION)) this.remember(sid, until);
    }
    this.syncedAt = startedAt;
    for (const [sid, until] of this.revoked) if (until <= startedAt) this.revoked.delete(sid);
    for (const map of [this.users, this.exemptions]) for (const [key, { until }] of map) if (until <= startedAt) map.delete(key);
  }

  /** The key a user's cut-off has in memory, in messages and in the tombstone table: `u` + 35 characters of a SHA-256 of the id. */
  userKey(userId: string): string {
    let key = this.keysOf.get(userId);
    if (key === undefined) {
      key = USER + digest(`user\n${userId}`);
      if (this.keysOf.size >= 10_000) this.keysOf.clear();
      this.keysOf.set(userId, key);
    }
    return key;
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    this.subscriber?.disconnect();
  }

  private remember(sid: string, until: number): void {
    const known = this.has(sid);
    if (until > (this.revoked.get(sid) ?? 0)) this.revoked.set(sid, until);
    if (known || !this.has(sid)) return;
    for (const listener of this.listeners) {
      try {
        listener(sid);
      } catch (error) {
        this.logger.error(`A revocation listener threw: ${(error as Error)?.stack ?? String(error)}`);
      }
    }
  }

  /**
   * Boot waits for the subscription at most `ms`: ioredis 5's sharded subscriber has been seen
   * never to answer an SSUBSCRIBE (a Cluster under load), which held the application's boot
   * forever. A late subscription goes on in the background; meanwhile the database sync covers.
   */
  private async subscribeWithin(client: Redis | Cluster, ms: number): Promise<void> {
    const subscribing = this.subscribe(client);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<typeof LATE>((resolve) => (timer = setTimeout(() => resolve(LATE), ms)));
    try {
      if ((await Promise.race([subscribing, late])) === LATE) {
        this.logger.warn(`Redis has not confirmed the revocation subscription within ${ms} ms; until it does, revocations are synced from the database`);
        subscribing.catch(() => undefined);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private async subscribe(client: Redis | Cluster): Promise<void> {
    if (isCluster(client)) return this.subscribeToCluster(client);
    // A subscriber may queue while offline. ioredis's own resubscribe after a reconnect leaves its
    // promise unhandled (a SUBSCRIBE that times out or is refused would be an unhandled rejection,
    // which ends the process) and is never tried again: the registry subscribes on every 'ready' itself.
    const subscriber = client.duplicate({ enableOfflineQueue: true, lazyConnect: true, maxRetriesPerRequest: null, autoResubscribe: false });
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined);
    subscriber.on('message', (_channel: string, message: string) => this.received(message));
    let listening: Promise<void> | undefined;
    subscriber.on('ready', () => {
      listening = this.listen(() => subscriber.subscribe(this.channel), () => subscriber.status === 'end');
    });
    try {
      await subscriber.connect();
    } catch (error) {
      this.logger.warn(`Revocations are not received over Redis yet (${(error as Error).message}); they are synced from the database`);
    }
    await listening;
  }

  /**
   * A Cluster's subscriber is a Cluster of its own (`duplicate` takes startup nodes first, options
   * second). With sharded subscribers, ioredis follows the channel's slot to its master, also after
   * a failover; a server without sharded pub/sub (Redis 6) gets a plain SUBSCRIBE, which any node serves.
   */
  private async subscribeToCluster(client: Cluster): Promise<void> {
    const subscriber = client.duplicate([], { shardedSubscribers: true, enableOfflineQueue: true, lazyConnect: true });
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined);
    subscriber.on('smessage', (_channel: string, message: string) => this.received(message));
    subscriber.on('message', (_channel: string, message: string) => this.received(message));
    try {
      await subscriber.connect();
    } catch (error) {
      this.logger.warn(`Revocations are not received over Redis yet (${(error as Error).message}); they are synced from the database`);
      return;
    }
    await this.listen(
      async () => {
        try {
          await subscriber.ssubscribe(this.channel);
          this.sharded = true;
        } catch (error) {
          if (!/unknown command/i.test(String((error as Error)?.message))) throw error;
          await subscriber.subscribe(this.channel);
        }
      },
      () => subscriber.status === 'end'
    );
  }

  private received(message: string): void {
    const [sid, until, cutoff, spared] = message.split(' ');
    if (!sid || !(Number(until) > 0)) return;
    // An instance's own message comes back to it too, as does one it already learnt at a sync: only
    // what is new here counts as received, and only what others sent says how long propagation takes.
    if (sid.startsWith(USER)) {
      if (!(Number(cutoff) > 0)) return;
      const known = this.users.get(sid);
      if (!known || Number(cutoff) > known.cutoff) this.telemetry.count('revocationsReceived');
      this.rememberUser(sid, Number(cutoff), Number(until), spared?.startsWith(EXEMPTION) ? spared : undefined);
    } else {
      // A session's message carries the time it was sent third.
      const sentAt = cutoff;
      if (!this.revoked.has(sid)) {
        this.telemetry.count('revocationsReceived');
        if (sentAt !== undefined) this.telemetry.record('ezsession.revocation.delay', Math.max(0, this.clock.now() - Number(sentAt)) / 1000);
      }
      this.remember(sid, Number(until));
    }
  }

  private rememberUser(key: string, cutoff: number, until: number, spared: string | undefined): void {
    if (spared) this.rememberSpared(spared, cutoff, until);
    const known = this.users.get(key);
    if (!known || cutoff > known.cutoff) this.users.set(key, { cutoff, until: Math.max(until, known?.until ?? 0) });
  }

  private rememberSpared(key: string, cutoff: number, until: number): void {
    const known = this.exemptions.get(key);
    if (!known || cutoff > known.cutoff) this.exemptions.set(key, { cutoff, until });
  }

  /** Subscribes, then reads back from MySQL the messages missed while not subscribed. */
  private async listen(subscribe: () => Promise<unknown>, closed: () => boolean): Promise<void> {
    try {
      await subscribe();
    } catch (error) {
      // Disconnected at shutdown: nothing to warn about.
      if (closed()) return;
      this.logger.warn(`Revocations may not be received over Redis until it reconnects (${(error as Error).message}); they are synced from the database`);
    }
    await this.resync().catch(() => undefined);
  }
}

/**
 * Rows of the tombstone table that are no session id (session ids are UUIDs, in hex): `u…` a
 * user's cut-off, `x…` the session it spared. 36 characters, as the `sid` column holds.
 */
const USER = 'u';
const EXEMPTION = 'x';

/** The key of the session `revokeAllForUser(userId, { except: sid })` spares. */
export function exemptionKey(userId: string, sid: string): string {
  return EXEMPTION + digest(`spared\n${userId}\n${sid}`);
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 35);
}

function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as Cluster).isCluster === true;
}
