import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { EZ_SESSION_DATA_SOURCE, EZ_SESSION_OPTIONS, EZ_SESSION_REDIS } from './ez-session.constants.js';
import { EzSessionConfigurableModule } from './ez-session.module-definition.js';
import { ezSessionProviders, type SessionDataSource } from './ez-session.providers.js';
import { EzSessionService } from './ez-session.service.js';
import { EzSessionHealthIndicator } from './health/ez-session.health-indicator.js';
import { SessionTelemetry } from './observability/session-telemetry.js';
import { RevocationRegistry, type SessionRedis } from './revocation/revocation.registry.js';
import { RequestSessions } from './session/request-sessions.js';
import { SessionEvents } from './session/session-events.js';
import { SessionLifetimes } from './session/session-lifetimes.js';
import { SessionLimit } from './users/session-limit.js';
import { UserSessions } from './users/user-sessions.js';
import { SessionManager } from './session/session.manager.js';
import { SessionOpener } from './session/session-opener.js';
import { SessionWriter } from './session/session-writer.js';
import { SessionGarbageCollector } from './storage/session-gc.js';
import { SocketSessions } from './ws/socket-sessions.js';

/**
 * `EzSessionModule.forRoot({ secret, database, redis })` or `forRootAsync({ imports, inject,
 * useFactory })`: global, so the decorators, `EzSessionService` and `EzSessionGuard` work in every
 * module. Nothing is mounted on the request path: a request meets EzSession only when a decorator,
 * a guard or a service call asks for its session.
 */
@Global()
@Module({
  providers: [
    ...ezSessionProviders,
    SessionEvents,
    SessionLifetimes,
    SessionLimit,
    UserSessions,
    RevocationRegistry,
    SessionGarbageCollector,
    SessionOpener,
    SessionWriter,
    SessionManager,
    SocketSessions,
    RequestSessions,
    EzSessionService,
    EzSessionHealthIndicator
  ],
  exports: [EzSessionService, EzSessionHealthIndicator, EZ_SESSION_OPTIONS]
})
export class EzSessionModule extends EzSessionConfigurableModule implements OnApplicationShutdown {
  constructor(
    @Inject(EZ_SESSION_DATA_SOURCE) private readonly storage: SessionDataSource,
    @Inject(EZ_SESSION_REDIS) private readonly redis: SessionRedis,
    private readonly telemetry: SessionTelemetry
  ) {
    super();
  }

  /** Closes what EzSession opened; a DataSource or Redis client the app passed in stays open. */
  async onApplicationShutdown(): Promise<void> {
    this.telemetry.close();
    if (this.redis.owned) await this.redis.client?.quit().catch(() => this.redis.client?.disconnect());
    if (this.storage.owned && this.storage.dataSource.isInitialized) await this.storage.dataSource.destroy();
  }
}
