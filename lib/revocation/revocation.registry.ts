import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { EZ_SESSION_CLOCK } from '../clock/session-clock.js';
import { EZ_SESSION_OPTIONS, EZ_SESSION_REDIS } from '../ez-session.constants.js';
import type { EzSessionClock } from '../interfaces/ez-session-options.interface.js';
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
    @Inject(EZ_SESSION_CLOCK) private readonly clock: EzSessionClock
  ) {
    this.channel = `${options.keyPrefix}revoked`;
  }

  async onModuleInit(): Promise<void> {
    await this.resync();
    if (this.redis.client) await this.subscribeWithin(this.redis.client, SUBSCRIBE_AT_BOOT_MS);
    if (this.options.revocationSyncInterval > 0) {
      this.timer = setInterval(() => void this.resync().catch(() => undefined), this.options.revocationSyncInterval * 1000);
      this.timer.unref();
    }
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
    const client = this.redis.client;
    if (!client) return;
    const message = `${sid} ${until}`;
    await (this.sharded ? (client as Cluster).spublish(this.channel, message) : client.publish(this.channel, message)).catch((error: Error) => {
      this.logger.warn(`Could not announce a revocation over Redis (${error.message}); other instances learn it at their next sync`);
    });
  }

  /** Re-reads tombstones written since the last sync (with a margin for clock differences) and drops expired ones. */
  async resync(): Promise<void> {
    const startedAt = this.clock.now();
    for (const { sid, until } of await this.repository.revokedSince(this.syncedAt - 60_000)) this.remember(sid, until);
    this.syncedAt = startedAt;
    for (const [sid, until] of this.revoked) if (until <= startedAt) this.revoked.delete(sid);
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
    const [sid, until] = message.split(' ');
    if (sid && Number(until) > 0) this.remember(sid, Number(until));
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

function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as Cluster).isCluster === true;
}
