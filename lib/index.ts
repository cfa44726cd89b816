export { EzSessionModule } from './ez-session.module.js';
export { EzSessionService, type ActiveSession } from './ez-session.service.js';
export { EzSessionInterceptor } from './ez-session.interceptor.js';
export { Flash, Jwt, Session, type SessionParamOptions } from './decorators/index.js';
export { FlashBag } from './flash/flash-bag.js';
export {
  EzSessionConfigError,
  ReadonlySessionError,
  SessionClaimError,
  SessionDataError,
  SessionLockTimeoutError,
  SessionStoreUnavailableError
} from './ez-session.errors.js';
export * from './interfaces/index.js';
import type { EZ_SESSION_ASYNC_OPTIONS_TYPE } from './ez-session.module-definition.js';
/** Options of `EzSessionModule.forRootAsync()`: `imports`, `inject`, and `useFactory`, `useClass` or `useExisting`. */
export type EzSessionModuleAsyncOptions = typeof EZ_SESSION_ASYNC_OPTIONS_TYPE;
