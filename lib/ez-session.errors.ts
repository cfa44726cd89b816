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
  | 'SESSION_CSRF_REFUSED';

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
export const STORE_UNAVAILABLE_MESSAGE = 'The session store is unavailable. Nothing was written; retry the request.';

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
    readonly reader: string
  ) {
    super(`Cannot change session key "${key}": ${reader} is read-only.`);
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
