/** Injection token of the validated, defaulted options (`ResolvedOptions`). */
export const EZ_SESSION_OPTIONS = Symbol('EZ_SESSION_OPTIONS');
/** Injection token of the TypeORM DataSource that holds the sessions table. */
export const EZ_SESSION_DATA_SOURCE = Symbol('EZ_SESSION_DATA_SOURCE');
