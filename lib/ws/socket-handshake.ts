import type { ExecutionContext } from '@nestjs/common';
import { isExecutionContext, type HttpRequestLike } from '../http/http-request.js';

type Headers = Record<string, string | string[] | undefined>;

/**
 * A socket.io socket: its handshake keeps the headers of the connection's first HTTP request, the
 * client's `auth` payload and its address, for the socket's whole life.
 */
interface SocketIoLike {
  handshake: { headers: Headers; auth?: Record<string, unknown>; address?: string };
  /** The connection's first HTTP request (it carries the server that accepted it). */
  request?: object;
}

/** A `ws` WebSocket: nothing of the upgrade request stays on it, so it is handed over at connection. */
interface WsSocketLike {
  readyState: number;
  send(data: unknown): void;
}

/** The upgrade request of a `ws` connection, as `handleConnection(client, request)` receives it. */
export interface UpgradeRequestLike {
  headers: Headers;
  socket?: { remoteAddress?: string };
}

export function isSocketIo(value: unknown): value is SocketIoLike {
  const handshake = (value as SocketIoLike | undefined)?.handshake;
  return typeof handshake === 'object' && handshake !== null && typeof handshake.headers === 'object';
}

function isWsSocket(value: unknown): value is WsSocketLike {
  return typeof (value as WsSocketLike | undefined)?.readyState === 'number' && typeof (value as WsSocketLike).send === 'function';
}

/** The socket behind a gateway's ExecutionContext, or `target` itself when it is a socket. */
export function socketOf(target: ExecutionContext | object): object | undefined {
  if (isExecutionContext(target)) return target.getType() === 'ws' ? target.getArgByIndex<object>(0) : undefined;
  return isSocketIo(target) || isWsSocket(target) ? target : undefined;
}

/** The event a socket emits once it is gone. */
export function closeEventOf(socket: object): string {
  return isSocketIo(socket) ? 'disconnect' : 'close';
}

/**
 * What the session is read from: the handshake of a socket.io socket, or a `ws` socket's upgrade
 * request. socket.io's `auth.token` is the client's explicit choice, so it comes first, then the
 * `Authorization: Bearer` header, then the cookie. `undefined` for a `ws` socket given no request.
 */
export function handshakeOf(socket: object, upgrade: UpgradeRequestLike | undefined): HttpRequestLike | undefined {
  if (isSocketIo(socket)) {
    const { headers, auth, address } = socket.handshake;
    const token = auth?.token;
    return { headers: typeof token === 'string' && token !== '' ? { ...headers, authorization: `Bearer ${token}` } : headers, ip: address };
  }
  if (upgrade && typeof upgrade.headers === 'object') return { headers: upgrade.headers, ip: upgrade.socket?.remoteAddress };
  return undefined;
}

/**
 * The handshake's `Origin` when it names the host the handshake was sent to, else `undefined`. The
 * scheme is not compared: behind a TLS-terminating proxy the upgrade arrives as plain HTTP, and
 * the socket layer has no trust-proxy setting to tell what the browser used.
 */
export function sameHostOrigin(headers: Headers): string | undefined {
  const origin = headers.origin;
  const host = headers.host;
  if (typeof origin !== 'string' || typeof host !== 'string') return undefined;
  try {
    const parsed = new URL(origin);
    return parsed.host === new URL(`${parsed.protocol}//${host}`).host ? origin : undefined;
  } catch {
    return undefined;
  }
}

/** The object that tells which app's server accepted the socket (when several run in one process). */
export function socketRequestOf(socket: object): object {
  return (isSocketIo(socket) && socket.request) || socket;
}
