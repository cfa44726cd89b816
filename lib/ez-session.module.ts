import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { EZ_SESSION_DATA_SOURCE, EZ_SESSION_OPTIONS, EZ_SESSION_REDIS } from './ez-session.constants.js';
import { EzSessionConfigurableModule } from './ez-session.module-definition.js';
import { ezSessionProviders, type SessionDataSource } from './ez-session.providers.js';
import { EzSessionService } from './ez-session.service.js';
import { RevocationRegistry, type SessionRedis } from './revocation/revocation.registry.js';
import { SessionManager } from './session/session.manager.js';
import { SessionGarbageCollector } from './storage/session-gc.js';

/**
 * `EzSessionModule.forRoot({ secret, database, redis })` or `forRootAsync({ imports, inject,
 * useFactory })`: provides `EzSessionService`, and what the session interceptor needs in every
 * module: each EzSession parameter decorator puts that interceptor on its own handler.
 */
@Global()
@Module({
  providers: [
    ...ezSessionProviders,
    RevocationRegistry,
    SessionGarbageCollector,
    SessionManager,
    EzSessionService
  ],
  // The interceptor is instantiated in the module of each controller that uses a decorator, so its dependencies are exported.
  exports: [EzSessionService, SessionManager, EZ_SESSION_OPTIONS]
})
export class EzSessionModule extends EzSessionConfigurableModule implements OnApplicationShutdown {
  constructor(
    @Inject(EZ_SESSION_DATA_SOURCE) private readonly storage: SessionDataSource,
    @Inject(EZ_SESSION_REDIS) private readonly redis: SessionRedis
  ) {
    super();
  }

  /** Closes what EzSession opened; a DataSource or Redis client the app passed in stays open. */
  async onApplicationShutdown(): Promise<void> {
    if (this.redis.owned) await this.redis.client?.quit().catch(() => this.redis.client?.disconnect());
    if (this.storage.owned && this.storage.dataSource.isInitialized) await this.storage.dataSource.destroy();
  }
}
