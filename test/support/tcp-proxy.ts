import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { LOOPBACK, type Endpoint } from './endpoint.js';

/**
 * Which way a pause holds data: `to-target` is what clients send, `from-target` what the
 * target sends back. With a replica as the client and its master as the target,
 * `from-target` is the replication stream and `to-target` the replica's acknowledgements.
 */
export type ProxyDirection = 'both' | 'to-target' | 'from-target';

function affects(direction: ProxyDirection, pump: 'to-target' | 'from-target'): boolean {
  return direction === 'both' || direction === pump;
}

/**
 * Forwards one direction of a connection. Holding stops reading from the source, so
 * the data waits in the kernel's socket buffers and then the sender's, in order, with
 * no copy of ours; both ends see an open, silent connection, like a stalled network.
 */
class Pump {
  private held: boolean;
  private backedUp = false;

  constructor(
    private readonly source: Socket,
    private readonly sink: Socket,
    held: boolean,
  ) {
    this.held = held;
    // Paused before the 'data' listener exists, or attaching it would start the flow.
    this.update();
    source.on('data', (chunk) => {
      if (!sink.write(chunk)) {
        this.backedUp = true;
        this.update();
      }
    });
    sink.on('drain', () => {
      this.backedUp = false;
      this.update();
    });
    // An end is forwarded only after the data before it, so it is held as well.
    source.on('end', () => sink.end());
  }

  hold(held: boolean): void {
    this.held = held;
    this.update();
  }

  private update(): void {
    if (this.held || this.backedUp) this.source.pause();
    else this.source.resume();
  }
}

/** A client's connection through the proxy and the proxy's connection to the target. */
export class ProxiedConnection {
  private readonly toTarget: Pump;
  private readonly fromTarget: Pump;

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    held: { toTarget: boolean; fromTarget: boolean },
  ) {
    this.toTarget = new Pump(client, upstream, held.toTarget);
    this.fromTarget = new Pump(upstream, client, held.fromTarget);
  }

  /**
   * The port of the proxy's side of the connection to the target: what the target
   * reports as this client's address (e.g. in `CLIENT LIST`).
   */
  get upstreamLocalPort(): number | undefined {
    return this.upstream.localPort;
  }

  pause(direction: ProxyDirection = 'both'): void {
    this.hold(direction, true);
  }

  resume(direction: ProxyDirection = 'both'): void {
    this.hold(direction, false);
  }

  destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  private hold(direction: ProxyDirection, held: boolean): void {
    if (affects(direction, 'to-target')) this.toTarget.hold(held);
    if (affects(direction, 'from-target')) this.fromTarget.hold(held);
  }
}

/**
 * A TCP proxy on 127.0.0.1 that can hold traffic back without closing anything, to
 * delay e.g. a replication stream deterministically: a paused proxy keeps every
 * connection open and silent, `resume()` delivers what was held, in order.
 */
export class TcpProxy {
  private server?: Server;
  private readonly open = new Set<ProxiedConnection>();
  // Applies to connections made later too: a client reconnecting during a pause stays held.
  private held = { toTarget: false, fromTarget: false };

  /**
   * `target` may be a function, read at each new connection, for a target whose port is
   * only known once it started (e.g. a server that must announce the proxy's port).
   */
  constructor(private readonly target: Endpoint | (() => Endpoint)) {}

  get port(): number {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('TcpProxy has not been started');
    return address.port;
  }

  get endpoint(): Endpoint {
    return { host: LOOPBACK, port: this.port };
  }

  /** Connections open right now, oldest first. */
  get connections(): readonly ProxiedConnection[] {
    return [...this.open];
  }

  get isPaused(): boolean {
    return this.held.toTarget || this.held.fromTarget;
  }

  async start(): Promise<void> {
    if (this.server) throw new Error(`TcpProxy is already listening on port ${this.port}`);
    // Half-open connections allowed, so each direction's end travels separately, after its data.
    const server = createServer({ allowHalfOpen: true }, (client) => this.accept(client));
    // Port 0: the kernel picks a free one atomically, without freePort()'s window.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, LOOPBACK, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  pause(direction: ProxyDirection = 'both'): void {
    this.hold(direction, true);
  }

  resume(direction: ProxyDirection = 'both'): void {
    this.hold(direction, false);
  }

  /** Destroys every open connection (both sides); new ones are still accepted. */
  cutAll(): void {
    for (const connection of this.open) connection.destroy();
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    this.cutAll();
    await closed;
  }

  private hold(direction: ProxyDirection, held: boolean): void {
    if (affects(direction, 'to-target')) this.held.toTarget = held;
    if (affects(direction, 'from-target')) this.held.fromTarget = held;
    for (const connection of this.open) connection[held ? 'pause' : 'resume'](direction);
  }

  private accept(client: Socket): void {
    const target = typeof this.target === 'function' ? this.target() : this.target;
    const upstream = connect({ ...target, allowHalfOpen: true });
    const connection = new ProxiedConnection(client, upstream, { ...this.held });
    this.open.add(connection);
    // Whichever side fails or closes first takes the other with it, as a broken link would.
    const teardown = () => {
      this.open.delete(connection);
      connection.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', teardown);
      socket.on('close', teardown);
    }
  }
}
