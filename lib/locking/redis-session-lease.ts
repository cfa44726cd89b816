import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { SessionLockTimeoutError, SessionStoreUnavailableError } from '../ez-session.errors.js';

/** Deletes the lease only while it is still ours (ARGV: token). */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Extends the lease only while it is still ours (ARGV: token, ttl ms). */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** One held lease: renewed in the background while held, and judged on this process's monotonic clock. */
export interface HeldLease {
  /**
   * Whether the lease is certainly still ours in Redis now: it was set (or renewed) less than its
   * time to live ago, minus a margin for the command's flight. A process that was paused longer
   * than that may have lost it, even if Redis has not answered otherwise.
   */
  valid(): boolean;
  /** Asks Redis whether the key still holds our token (a token is never reused, so yes means never lost). */
  stillHeld(): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * A session lock that spans every instance and every database node: a lease in the Redis all
 * instances share, `SET key token NX PX ttl` with a random token, renewed and released by scripts
 * that compare the token first, so one holder never extends or frees another's lease. It is
 * advisory: what makes it safe is that every write under it names the row version it read (see
 * SessionWriter), so a lease lost to a pause, a failover or its expiry fails that request instead
 * of overwriting a newer write.
 */
export class RedisSessionLease {
  private readonly logger = new Logger('EzSession');
  private lastWarning = -Infinity;
  /** Long enough for a handler, short enough that a crashed holder frees the session soon. */
  readonly ttlMs: number;

  constructor(
    private readonly client: Redis | Cluster,
    private readonly keyPrefix: string,
    lockTimeoutSeconds: number
  ) {
    this.ttlMs = Math.round(Math.min(10_000, Math.max(2_000, lockTimeoutSeconds * 1000)));
  }

  /** The lease of `sid`, waiting for it until `deadline` (performance.now() ms). */
  async acquire(sid: string, deadline: number, lockTimeout: number): Promise<HeldLease> {
    const key = `${this.keyPrefix}lock:${sid}`;
    const token = randomBytes(12).toString('base64url');
    for (let attempt = 1; ; attempt++) {
      const sentAt = performance.now();
      let answer: unknown;
      try {
        answer = await this.client.set(key, token, 'PX', this.ttlMs, 'NX');
      } catch (error) {
        // The client is told only that the store is unavailable; the cause goes to the log, one line per 10 s at most.
        if (performance.now() - this.lastWarning > 10_000) {
          this.lastWarning = performance.now();
          this.logger.warn(`The session lock could not be taken in Redis: ${error instanceof Error ? error.message : String(error)}`);
        }
        throw new SessionStoreUnavailableError(error);
      }
      if (answer === 'OK') return this.held(key, token, sentAt);
      // Another instance holds it: waits grow from ~1 ms to ~25 ms, with jitter so waiters do not move in step.
      const wait = Math.random() * Math.min(25, attempt * 2);
      if (performance.now() + wait >= deadline) throw new SessionLockTimeoutError(lockTimeout);
      await sleep(wait);
    }
  }

  private held(key: string, token: string, setAt: number): HeldLease {
    const margin = Math.min(1000, this.ttlMs / 5);
    let validUntil = setAt + this.ttlMs - margin;
    let released = false;
    const renew = setInterval(() => {
      const sentAt = performance.now();
      this.client.eval(RENEW, 1, key, token, String(this.ttlMs)).then(
        (renewed) => {
          if (Number(renewed) === 1) validUntil = Math.max(validUntil, sentAt + this.ttlMs - margin);
        },
        (error: unknown) => this.logger.warn(`Could not renew a session lock in Redis: ${error instanceof Error ? error.message : String(error)}`)
      );
    }, this.ttlMs / 3);
    renew.unref();
    return {
      valid: () => !released && performance.now() < validUntil,
      stillHeld: async () => !released && (await this.client.get(key).catch(() => null)) === token,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(renew);
        // A failure here leaves the lease to expire by itself, at most ttlMs later.
        await this.client.eval(RELEASE, 1, key, token).catch((error: unknown) => this.logger.warn(`Could not release a session lock in Redis: ${error instanceof Error ? error.message : String(error)}`));
      }
    };
  }
}
