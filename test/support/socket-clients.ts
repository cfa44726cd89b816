import { once } from 'node:events';
import { io, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';

/** The user agent the specs' HTTP and socket clients send, so that tokens bound to it are accepted. */
export const USER_AGENT = 'ezsession-spec';

export interface Handshake {
  cookie?: string;
  bearer?: string;
  /** socket.io's `auth: { token }`. */
  authToken?: string;
  userAgent?: string;
  /** The page's origin, as a browser sends it with the handshake. */
  origin?: string;
}

function headersOf(handshake: Handshake): Record<string, string> {
  const headers: Record<string, string> = { 'user-agent': handshake.userAgent ?? USER_AGENT };
  if (handshake.cookie) headers.cookie = `ezsession=${handshake.cookie}`;
  if (handshake.bearer) headers.authorization = `Bearer ${handshake.bearer}`;
  if (handshake.origin) headers.origin = handshake.origin;
  return headers;
}

const closings = new WeakMap<Socket, Promise<string>>();

/** A socket.io client, connected (the server may still close it right after: see `closedWithin`). */
export async function connectSocketIo(url: string, handshake: Handshake): Promise<Socket> {
  const socket = io(url, {
    reconnection: false,
    forceNew: true,
    // A message the server never answers fails the spec instead of hanging it.
    ackTimeout: 3000,
    extraHeaders: headersOf(handshake),
    auth: handshake.authToken === undefined ? {} : { token: handshake.authToken }
  });
  // Listened for from the start: a server that refuses the socket closes it as soon as it connects.
  closings.set(socket, new Promise((resolve) => socket.once('disconnect', (reason) => resolve(reason))));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket;
}

/** Resolves with the reason the server closed `socket` for, or `open` if it is still open after `ms`. */
export function closedWithin(socket: Socket, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const open = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('open'), ms)));
  return Promise.race([closings.get(socket)!, open]).finally(() => clearTimeout(timer));
}

/** The `exception` event a message provoked (Nest's answer to an error in a gateway). */
export function exceptionOf(socket: Socket, event: string): Promise<any> {
  const exception = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no exception event after "${event}" within 3 s`)), 3000);
    socket.once('exception', (data) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
  socket.emit(event);
  return exception;
}

/** A plain WebSocket client of Nest's ws adapter: JSON `{ event, data }` messages. */
export class WsClient {
  private constructor(readonly socket: WebSocket) {}

  static async connect(url: string, handshake: Handshake): Promise<WsClient> {
    const socket = new WebSocket(url.replace(/^http/, 'ws'), { headers: headersOf(handshake) });
    await once(socket, 'open');
    return new WsClient(socket);
  }

  async request(event: string, data?: unknown): Promise<unknown> {
    const answer = once(this.socket, 'message', { signal: AbortSignal.timeout(3000) });
    this.socket.send(JSON.stringify({ event, data }));
    const [message] = await answer;
    return JSON.parse(String(message));
  }

  /** The close code the server closed the socket with, or `open` if it is still open after `ms`. */
  closedWithin(ms: number): Promise<number | 'open'> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve('open'), ms);
      this.socket.once('close', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  close(): void {
    this.socket.close();
  }
}
