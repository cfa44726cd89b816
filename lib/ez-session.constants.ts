/** Injection token of the validated, defaulted options (`ResolvedOptions`). */
export const EZ_SESSION_OPTIONS = Symbol('EZ_SESSION_OPTIONS');
/** Injection token of the TypeORM DataSource that holds the sessions table. */
export const EZ_SESSION_DATA_SOURCE = Symbol('EZ_SESSION_DATA_SOURCE');
/** Injection token of the Redis connection (`SessionRedis`): the client, or none, and who owns it. */
export const EZ_SESSION_REDIS = Symbol('EZ_SESSION_REDIS');
