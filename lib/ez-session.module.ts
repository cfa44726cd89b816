import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { SessionCache } from './cache/session-cache.js';
import { EZ_SESSION_DATA_SOURCE } from './ez-session.constants.js';
import { EzSessionInterceptor } from './ez-session.interceptor.js';
import { EzSessionConfigurableModule } from './ez-session.module-definition.js';
import { ezSessionProviders, type SessionDataSource } from './ez-session.providers.js';
import { EzSessionService } from './ez-session.service.js';
import { SessionManager } from './session/session.manager.js';

/**
 * `EzSessionModule.forRoot({ secret, database, redis })` or `forRootAsync({ imports, inject,
 * useFactory })`: registers the session interceptor for every HTTP handler and `EzSessionService`.
 */
@Global()
@Module({
  providers: [...ezSessionProviders, SessionManager, EzSessionService, { provide: APP_INTERCEPTOR, useClass: EzSessionInterceptor }],
  exports: [EzSessionService]
})
export class EzSessionModule extends EzSessionConfigurableModule implements OnApplicationShutdown {
  constructor(
    private readonly cache: SessionCache,
    @Inject(EZ_SESSION_DATA_SOURCE) private readonly storage: SessionDataSource
  ) {
    super();
  }

  /** Closes what EzSession opened; a DataSource or Redis client the app passed in stays open. */
  async onApplicationShutdown(): Promise<void> {
    await this.cache.close();
    if (this.storage.owned && this.storage.dataSource.isInitialized) await this.storage.dataSource.destroy();
  }
}
