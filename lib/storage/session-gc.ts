import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import { SessionTelemetry } from '../observability/session-telemetry.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { SessionRepository } from './session.repository.js';

/**
 * Deletes expired rows and tombstones in bounded batches, on a schedule and on demand. Expired
 * sessions are unreadable anyway (every read checks expiry); this only reclaims space.
 */
@Injectable()
export class SessionGarbageCollector implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('EzSession');
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions,
    private readonly repository: SessionRepository,
    private readonly telemetry: SessionTelemetry
  ) {}

  onApplicationBootstrap(): void {
    if (this.options.gcInterval === 0) return;
    this.timer = setInterval(() => {
      this.run().catch((error: Error) => this.logger.warn(`Session GC failed: ${error.message}`));
    }, this.options.gcInterval * 1000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** One pass; concurrent callers share it. Returns the rows and tombstones deleted. */
  run(): Promise<number> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<number> {
    let total = 0;
    for (;;) {
      const started = performance.now();
      const deleted = await this.repository.deleteExpired(this.options.gcBatchSize);
      total += deleted;
      this.telemetry.count('gcRemoved', deleted);
      if (deleted < this.options.gcBatchSize) break;
      // A pause as long as the batch took (at most a second): the pass never takes more than half of
      // the database's time from the requests it shares it with, however big the backlog.
      await sleep(Math.min(1000, performance.now() - started));
    }
    this.telemetry.count('gcRuns');
    // The active-sessions gauge comes from here (one COUNT per pass), and only when a reader asks for it.
    if (this.telemetry.takeGaugeDemand()) this.telemetry.activeSessionsCounted(await this.repository.countActive());
    return total;
  }
}
