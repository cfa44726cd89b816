import { reportOf } from '../ez-session.errors.js';

/** What a socket client receives as the `exception` event's data when EzSession refused or failed a message. */
export interface EzSessionWsError {
  status: 'error';
  /** `UNAUTHENTICATED` (EzSessionGuard refused) or a `SessionErrorCode`. */
  code: string;
  message: string;
  [name: string]: unknown;
}

/**
 * A WsException carrying `payload`: Nest's gateway exception filter sends only those to the client
 * (anything else becomes "Internal server error"). @nestjs/websockets is loaded here, when a
 * gateway needs it, so an app without gateways never needs it installed.
 */
export async function wsException(payload: EzSessionWsError): Promise<Error> {
  const { WsException } = await import('@nestjs/websockets');
  return new WsException(payload);
}

/** The WebSocket form of an error EzSession raised in a gateway; other errors pass as they are. */
export async function wsErrorOf(error: unknown): Promise<unknown> {
  const report = reportOf(error);
  return report ? wsException({ status: 'error', ...report }) : error;
}
