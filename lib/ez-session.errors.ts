import { HttpException, HttpStatus } from '@nestjs/common';

/** The module options are invalid, or what they point at cannot be used; thrown at boot, before the app serves anything. */
export class EzSessionConfigError extends Error {
  constructor(
    readonly option: string,
    problem: string,
    options?: { cause?: unknown }
  ) {
    super(`EzSession option "${option}" ${problem}`, options);
    this.name = 'EzSessionConfigError';
  }
}

/**
 * What a client is told went wrong, named the same in every transport: the `extensions.code` of a
 * GraphQL error, the `code` of a WebSocket exception.
 */
export type SessionErrorCode =
  | 'SESSION_LOCK_TIMEOUT'
  | 'SESSION_STORE_UNAVAILABLE'
  | 'SESSION_DATA_INVALID'
  | 'SESSION_TOO_LARGE'
  | 'SESSION_CLAIM_INVALID'
  | 'SESSION_CSRF_REFUSED'
  | 'SESSION_LIMIT_REACHED'
  | 'SESSION_NOT_FRESH'
  | 'SESSION_LOCK_LOST'
  | 'SESSION_WRITE_CONFLICT';

/** The session lock could not be taken in time; the request wrote nothing. */
export class SessionLockTimeoutError extends HttpException {
  readonly code: SessionErrorCode = 'SESSION_LOCK_TIMEOUT';

  constructor(readonly lockTimeout: number) {
    super(
      {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'SessionLockTimeout',
        code: 'SESSION_LOCK_TIMEOUT',
        message: `The session is busy: its lock was not obtained within ${lockTimeout}s. Nothing was written; retry the request.`
      },
      HttpStatus.SERVICE_UNAVAILABLE
    );
    this.name = 'SessionLockTimeoutError';
  }
}

/** What every client is told of a store failure, in every transport. */
const STORE_UNAVAILABLE_MESSAGE = 'The session store is unavailable. Nothing was written; retry the request.';

/**
 * The durable store could not be reached; the request wrote nothing and no token was issued. The
 * client is told only that: the driver's message (hosts, ports, table, column and collation names)
 * stays in `cause` and in the app's log (context `EzSession`), never in the answer.
 */
export class SessionStoreUnavailableError extends HttpException {
  readonly code: SessionErrorCode = 'SESSION_STORE_UNAVAILABLE';

  constructor(cause: unknown) {
    super(
      {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'SessionStoreUnavailable',
        code: 'SESSION_STORE_UNAVAILABLE',
        message: STORE_UNAVAILABLE_MESSAGE
      },
      HttpStatus.SERVICE_UNAVAILABLE,
      { cause }
    );
    this.name = 'SessionStoreUnavailableError';
  }
}

/**
 * A `@Session({ lock: true })` request lost its cluster-wide lock before it wrote (the process was
 * paused past the lease, Redis failed over, or another request changed the keys this one changed);
 * the request wrote nothing rather than overwrite a write it did not see.
 */
export class SessionLockLostError extends HttpException {
  readonly code: SessionErrorCode = 'SESSION_LOCK_LOST';

  constructor(reason: string) {
    super(
      {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'SessionLockLost',
        code: 'SESSION_LOCK_LOST',
        message: `The session lock was lost before the write (${reason}). Nothing was written; retry the request.`
      },
      HttpStatus.SERVICE_UNAVAILABLE
    );
    this.name = 'SessionLockLostError';
  }
}

/**
 * A multi-primary cluster (Galera) kept refusing the write at commit because writes on other nodes
 * conflicted with it, more times than a write retries; nothing was written.
 */
export class SessionWriteConflictError extends HttpException {
  readonly code: SessionErrorCode = 'SESSION_WRITE_CONFLICT';

  constructor(attempts: number, cause: unknown) {
    super(
      {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'SessionWriteConflict',
        code: 'SESSION_WRITE_CONFLICT',
        message: `The session write conflicted with writes on other database nodes ${attempts} times in a row. Nothing was written; retry the request.`
      },
      HttpStatus.SERVICE_UNAVAILABLE,
      { cause }
    );
    this.name = 'SessionWriteConflictError';
  }
}

/** Session or flash data that cannot be stored exactly; nothing was written. */
export class SessionDataError extends HttpException {
  readonly code: SessionErrorCode;

  constructor(message: string, status: HttpStatus = HttpStatus.UNPROCESSABLE_ENTITY) {
    const code: SessionErrorCode = status === HttpStatus.PAYLOAD_TOO_LARGE ? 'SESSION_TOO_LARGE' : 'SESSION_DATA_INVALID';
    super({ statusCode: status, error: 'SessionDataError', code, message }, status);
    this.name = 'SessionDataError';
    this.code = code;
  }
}

/** A claim set through `@Jwt()` is reserved by EzSession or cannot go into a token. */
export class SessionClaimError extends HttpException {
  readonly code: SessionErrorCode = 'SESSION_CLAIM_INVALID';

  constructor(message: string) {
    super(
      { statusCode: HttpStatus.UNPROCESSABLE_ENTITY, error: 'SessionClaimError', code: 'SESSION_CLAIM_INVALID', message },
      HttpStatus.UNPROCESSABLE_ENTITY
    );
    this.name = 'SessionClaimError';
  }
}

/** A login over `maxSessionsPerUser` with `onSessionLimit: 'refuse'`: 409, and nothing of the request was stored. */
export class SessionLimitError extends HttpException {
  readonly code: SessionErrorCode = 'SESSION_LIMIT_REACHED';

  constructor(readonly limit: number) {
    super(
      {
        statusCode: HttpStatus.CONFLICT,
        error: 'SessionLimitReached',
        code: 'SESSION_LIMIT_REACHED',
        message: `This user already has ${limit} active session${limit === 1 ? '' : 's'}, the most allowed: sign out on another device first. Nothing was stored.`
      },
      HttpStatus.CONFLICT
    );
    this.name = 'SessionLimitError';
  }
}

/**
 * A request from another origin (a cross-site form, a sibling subdomain's page) tried a state
 * change with the session cookie, or to start a cookie session: refused before the session was
 * opened, so nothing of it was read or written.
 */
export class SessionCsrfError extends HttpException {
  readonly code: SessionErrorCode = 'SESSION_CSRF_REFUSED';

  constructor() {
    super(
      {
        statusCode: HttpStatus.FORBIDDEN,
        error: 'SessionCsrfRefused',
        code: 'SESSION_CSRF_REFUSED',
        message: 'Cross-origin request refused: it came from another origin with the session cookie. Send it from the app\'s own pages, with an Authorization: Bearer token, or list its origin in csrf.trustedOrigins.'
      },
      HttpStatus.FORBIDDEN
    );
    this.name = 'SessionCsrfError';
  }
}

/**
 * A change was attempted through a read-only view of the session (`@Session({ readonly: true })`,
 * or `EzSessionService.session()` / `claims()`). A programming error, not an HTTP one: Nest logs it,
 * with the reader named in the message, and the client gets a plain 500.
 */
export class ReadonlySessionError extends Error {
  constructor(
    readonly key: string,
    readonly reader: string,
    hint?: string
  ) {
    super(`Cannot change session key "${key}": ${reader} is read-only.${hint ? ` ${hint}` : ''}`);
    this.name = 'ReadonlySessionError';
  }
}

/** What a transport tells a client of an EzSession error; `undefined` for any other error. */
export interface SessionErrorReport {
  code: SessionErrorCode;
  message: string;
  /** Seconds to wait before retrying, for a lock timeout. */
  retryAfter?: number;
}

export function reportOf(error: unknown): SessionErrorReport | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (!(error instanceof HttpException) || typeof code !== 'string') return undefined;
  const response = error.getResponse();
  const message = typeof response === 'object' ? (response as { message?: unknown }).message : response;
  const report: SessionErrorReport = { code: code as SessionErrorCode, message: typeof message === 'string' ? message : error.message };
  if (error instanceof SessionLockTimeoutError) report.retryAfter = Math.ceil(error.lockTimeout);
  return report;
}
