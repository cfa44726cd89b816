import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './free-port.js';

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 25;
const OUTPUT_LIMIT = 16_384;
const PORT_ATTEMPTS = 3;

class Running {
  hasExited = false;
  spawnError?: Error;
  /** Tail of the server's stdout and stderr, for error messages. */
  output = '';
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-OUTPUT_LIMIT);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        this.hasExited = true;
        resolve();
      });
      child.once('error', (error) => {
        this.spawnError = error;
        this.hasExited = true;
        resolve();
      });
    });
  }
}

/**
 * A throwaway server process bound to 127.0.0.1 with its own temp directory.
 *
 * `start()` picks a port and initialises the directory on first use; `kill()` and
 * `restart()` keep both, so a restarted server sees the same port and data;
 * `stop()` shuts down and deletes the directory.
 */
export abstract class ManagedServer {
  private dir?: string;
  private assignedPort?: number;
  private running?: Running;
  private starting?: Promise<void>;

  protected abstract readonly name: string;

  /** One-time preparation of a fresh directory (e.g. creating system tables). */
  protected abstract initialize(dir: string): Promise<void>;

  protected abstract command(dir: string, port: number): { binary: string; args: string[] };

  /**
   * Resolves once the server on `port` serves requests and is the one using `dir`
   * (so a port taken by someone else is not mistaken for ours); rejects otherwise.
   */
  protected abstract probe(port: number, dir: string): Promise<void>;

  abstract get url(): string;

  get port(): number {
    if (this.assignedPort === undefined) throw new Error(`${this.name} has not been started`);
    return this.assignedPort;
  }

  get isRunning(): boolean {
    return this.running !== undefined && !this.running.hasExited;
  }

  async start(): Promise<void> {
    if (this.starting) throw new Error(`${this.name} is already starting`);
    this.starting = this.startOnce();
    try {
      await this.starting;
    } finally {
      this.starting = undefined;
    }
  }

  private async startOnce(): Promise<void> {
    if (this.isRunning) throw new Error(`${this.name} is already running on port ${this.port}`);
    let freshPorts = false;
    if (this.dir === undefined || this.assignedPort === undefined) {
      // Servers report their directory with symlinks resolved; probe() compares against it.
      const dir = await realpath(await mkdtemp(join(tmpdir(), `ezsession-${this.name.toLowerCase()}-`)));
      try {
        await this.initialize(dir);
      } catch (error) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
      this.dir = dir;
      await this.assignPorts();
      freshPorts = true;
    }
    for (let attempt = 1; ; attempt++) {
      const { binary, args } = this.command(this.dir, this.port);
      const running = new Running(spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
      this.running = running;
      try {
        await this.waitUntilReady(running, this.dir);
        return;
      } catch (error) {
        // A port is free when freePort() asks and may be taken before the server binds it (by another
        // spec file's server, or as the local port of an outgoing connection): pick new ones, on a
        // first start only (a restart must come back on the ports its clients and peers know).
        if (!freshPorts || attempt === PORT_ATTEMPTS || !/address already in use/i.test(running.output)) throw error;
        await this.assignPorts();
      }
    }
  }

  private async assignPorts(): Promise<void> {
    this.assignedPort = await freePort();
    await this.pickMorePorts();
  }

  /** Ports a server needs besides its main one (a Redis Cluster node's bus port), picked with it. */
  protected async pickMorePorts(): Promise<void> {}

  /** Graceful shutdown; also deletes the data directory. */
  async stop(): Promise<void> {
    // A start() under way spawns its process after this call would have looked for it
    // (e.g. a sibling's failure rejected the Promise.all that started both): let it finish.
    await this.starting?.catch(() => {});
    await this.shutdown();
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    this.assignedPort = undefined;
  }

  /** Simulates a crash: SIGKILL, keeping port and data for `restart()`. */
  async kill(): Promise<void> {
    await this.terminate('SIGKILL');
  }

  /** Graceful shutdown that keeps port and data (a later `start()` picks them up again). */
  async halt(): Promise<void> {
    await this.starting?.catch(() => {});
    await this.shutdown();
  }

  /** SIGSTOP: the process stays, its sockets stay open, nothing answers (a stalled host). */
  pause(): void {
    this.running?.child.kill('SIGSTOP');
  }

  /** SIGKILL at once, synchronously: for a process 'exit' handler, where nothing can be awaited. */
  killNow(): void {
    this.running?.child.kill('SIGCONT');
    this.running?.child.kill('SIGKILL');
  }

  /** SIGCONT after `pause()`. */
  resume(): void {
    this.running?.child.kill('SIGCONT');
  }

  /** Starts again on the same port and data directory (shutting down first if running). */
  async restart(): Promise<void> {
    if (this.dir === undefined) throw new Error(`${this.name} has not been started`);
    await this.shutdown();
    await this.start();
  }

  private async shutdown(): Promise<void> {
    const running = this.running;
    if (!running) return;
    // A paused process would never see the SIGTERM.
    running.child.kill('SIGCONT');
    running.child.kill('SIGTERM');
    const timedOut = await Promise.race([
      running.exited.then(() => false),
      sleep(STOP_TIMEOUT_MS, true, { ref: false }),
    ]);
    if (timedOut) await this.terminate('SIGKILL');
    this.running = undefined;
  }

  private async terminate(signal: NodeJS.Signals): Promise<void> {
    const running = this.running;
    if (!running) return;
    if (!running.hasExited) running.child.kill(signal);
    await running.exited;
    this.running = undefined;
  }

  private async waitUntilReady(running: Running, dir: string): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (running.hasExited) {
        const { exitCode, signalCode } = running.child;
        const why = running.spawnError?.message ?? `code ${exitCode}, signal ${signalCode}`;
        throw this.startupError(running, `exited during startup (${why})`);
      }
      try {
        await this.probe(this.port, dir);
        return;
      } catch (error) {
        lastError = error;
      }
      await sleep(POLL_INTERVAL_MS);
    }
    await this.terminate('SIGKILL');
    throw this.startupError(running, `was not ready after ${READY_TIMEOUT_MS} ms (${String(lastError)})`);
  }

  private startupError(running: Running, reason: string): Error {
    const tail = running.output.trim().split('\n').slice(-20).join('\n');
    return new Error(`${this.name} on port ${this.assignedPort} ${reason}${tail ? `\n--- output ---\n${tail}` : ''}`);
  }
}
