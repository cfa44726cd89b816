import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { EZ_SESSION_DATA_SOURCE, EZ_SESSION_REDIS } from './ez-session.constants.js';
import { EzSessionInterceptor } from './ez-session.interceptor.js';
import { EzSessionConfigurableModule } from './ez-session.module-definition.js';
import { ezSessionProviders, type SessionDataSource } from './ez-session.providers.js';
import { EzSessionService } from './ez-session.service.js';
import { RevocationRegistry, type SessionRedis } from './revocation/revocation.registry.js';
import { SessionManager } from './session/session.manager.js';
import { SessionGarbageCollector } from './storage/session-gc.js';

/**
 * `EzSessionModule.forRoot({ secret, database, redis })` or `forRootAsync({ imports, inject,
 * useFactory })`: registers the session interceptor for every HTTP handler and `EzSessionService`.
 */
@Global()
@Module({
  providers: [
    ...ezSessionProviders,
    RevocationRegistry,
    SessionGarbageCollector,
    SessionManager,
    EzSessionService,
    { provide: APP_INTERCEPTOR, useClass: EzSessionInterceptor }
  ],
  exports: [EzSessionService]
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
