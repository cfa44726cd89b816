export { EzSessionModule } from './ez-session.module.js';
export { EzSessionService, type ActiveSession } from './ez-session.service.js';
export type { RegenerateOptions } from './session/regenerate-options.js';
export { Flash, Jwt, PublicRoute, RequireSession, Session, SkipCsrf, type SessionParamOptions } from './decorators/index.js';
export { EzSessionGuard, type MissingSessionParts } from './guards/ez-session.guard.js';
export { EzSessionHealthIndicator, type EzSessionDependencyHealth, type EzSessionHealth, type EzSessionHealthOptions } from './health/ez-session.health-indicator.js';
export type { EzSessionMetrics } from './observability/session-telemetry.js';
export { FlashBag } from './flash/flash-bag.js';
export { createEzSessionEntities, type EzSessionRecord, type EzSessionRevokedRecord } from './storage/session.entities.js';
export {
  EzSessionConfigError,
  ReadonlySessionError,
  SessionClaimError,
  SessionCsrfError,
  SessionDataError,
  SessionLimitError,
  SessionLockLostError,
  SessionLockTimeoutError,
  SessionStoreUnavailableError,
  SessionWriteConflictError,
  type SessionErrorCode
} from './ez-session.errors.js';
export { EzSessionGraphQLError, type EzSessionGraphQLExtensions } from './graphql/graphql-error.js';
export type { UpgradeRequestLike } from './ws/socket-handshake.js';
export type { SocketRevokedListener } from './ws/socket-sessions.js';
export type { EzSessionWsError } from './ws/ws-error.js';
export * from './interfaces/index.js';
import type { EZ_SESSION_ASYNC_OPTIONS_TYPE } from './ez-session.module-definition.js';
/** Options of `EzSessionModule.forRootAsync()`: `imports`, `inject`, and `useFactory`, `useClass` or `useExisting`. */
export type EzSessionModuleAsyncOptions = typeof EZ_SESSION_ASYNC_OPTIONS_TYPE;
