import { connect, type Socket } from 'node:net';

/** One command as Redis's MONITOR reports it. */
export interface MonitoredCommand {
  /** Lower-case command name. */
  command: string;
  args: string[];
  /** `ip:port` of the client that sent it, `lua` for a script's own calls. */
  source: string;
}

const CONNECT_TIMEOUT_MS = 5_000;

/**
 * A MONITOR connection on a plain socket. ioredis's `monitor()` switches its parser to monitor
 * mode only a tick after MONITOR's `+OK`: a monitored line arriving in the same read (on a busy
 * server, e.g. a Sentinel's INFO right after a failover) is taken as a reply to no command, and
 * the client emits "Command queue state error ... Last reply: ... "info"" and loses the line.
 * Here every line after the `+OK` is a monitored command, by construction; the socket never
 * reconnects (a new connection would be a different source, and a gap in the stream).
 */
export class RedisMonitor {
  private buffer = '';
  private failure?: Error;
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly onCommand: (command: MonitoredCommand) => void,
  ) {}

  /** Resolves once Redis has answered MONITOR: every command run after that is reported. */
  static async start(redisUrl: string, onCommand: (command: MonitoredCommand) => void): Promise<RedisMonitor> {
    const url = new URL(redisUrl);
    const socket = connect({ host: url.hostname || '127.0.0.1', port: Number(url.port || 6379) });
    const monitor = new RedisMonitor(socket, onCommand);
    try {
      await monitor.handshake(url);
      return monitor;
    } catch (error) {
      monitor.close();
      throw error;
    }
  }

  /** Why the stream stopped, if it did: counts read from it since then would be short. */
  get error(): Error | undefined {
    return this.failure ?? (this.closed ? new Error('the MONITOR connection was closed') : undefined);
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private handshake(url: URL): Promise<void> {
    const password = decodeURIComponent(url.password);
    const user = decodeURIComponent(url.username);
    const commands = [...(password ? [user ? ['AUTH', user, password] : ['AUTH', password]] : []), ['MONITOR']];
    let pending = commands.length;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`MONITOR on ${url.host} was not answered within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      const fail = (error: Error) => {
        clearTimeout(timer);
        this.failure ??= error;
        reject(error);
      };
      this.socket.on('error', (error) => fail(error));
      this.socket.on('close', () => fail(this.failure ?? new Error(`the MONITOR connection to ${url.host} closed`)));
      this.socket.setEncoding('utf8');
      this.socket.on('data', (chunk: string) => {
        this.buffer += chunk;
        for (let end = this.buffer.indexOf('\r\n'); end >= 0; end = this.buffer.indexOf('\r\n')) {
          const line = this.buffer.slice(0, end);
          this.buffer = this.buffer.slice(end + 2);
          if (pending > 0) {
            if (line !== '+OK') return fail(new Error(`MONITOR on ${url.host} refused: ${line}`));
            if (--pending === 0) {
              clearTimeout(timer);
              resolve();
            }
          } else {
            try {
              this.onCommand(parseMonitorLine(line));
            } catch (error) {
              this.failure ??= error as Error;
            }
          }
        }
      });
      this.socket.write(commands.map(encodeCommand).join(''));
    });
  }
}

function encodeCommand(args: string[]): string {
  return `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`;
}

/** `+<time> [<db> <source>] "<arg>" "<arg>" ...`, the arguments escaped as Redis's sdscatrepr does. */
export function parseMonitorLine(line: string): MonitoredCommand {
  const open = line.indexOf('[');
  const close = line.indexOf(']', open);
  if (!line.startsWith('+') || open < 0 || close < 0) throw new Error(`Not a MONITOR line: ${line}`);
  const [, source = ''] = line.slice(open + 1, close).split(' ');
  const args: string[] = [];
  let i = close + 1;
  while (i < line.length) {
    if (line[i] !== '"') {
      i++;
      continue;
    }
    let arg = '';
    for (i++; i < line.length && line[i] !== '"'; i++) {
      if (line[i] !== '\\') {
        arg += line[i];
        continue;
      }
      const next = line[++i];
      if (next === 'x') {
        arg += String.fromCharCode(parseInt(line.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        arg += ({ n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' } as Record<string, string>)[next] ?? next;
      }
    }
    args.push(arg);
    i++;
  }
  return { command: (args[0] ?? '').toLowerCase(), args, source };
}
