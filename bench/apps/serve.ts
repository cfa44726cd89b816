import 'reflect-metadata';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';

/** What a bench app prints on stdout, one JSON line, once it listens. */
export interface ReadyLine {
  ready: true;
  /** The app under test. */
  url: string;
  /** A separate tiny server of the child's own (never the app's router): GET /memory, and the app's own `control` routes. */
  controlUrl: string;
  pid: number;
}

export interface ServeOptions {
  /** Global middleware and the like, applied before listen(). */
  configure?(app: INestApplication): void | Promise<void>;
  /** Runs after app.close(): close clients the app opened itself. */
  onClose?(): void | Promise<void>;
  /** Extra control routes (GET path -> JSON answer; the route gets the URL, query included), e.g. a GC pass the driver triggers mid-load. */
  control?: Record<string, (app: INestApplication, url: URL) => Promise<unknown>>;
}

/** The secret every bench app signs with: 48 characters, deterministic so runs are comparable. */
export const BENCH_SECRET = 'bench-secret-7c1e9a4f2b8d6035e1a7c9f4b2d80e6a3c5f';

export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (the bench driver sets it)`);
  return value;
}

/**
 * Boots a NestJS Express app on 127.0.0.1 (free port) and reports it on stdout. Shuts down on
 * SIGTERM / SIGINT, or when the driver goes away (stdin closes), so no app outlives a bench run.
 */
export async function serve(module: unknown, options: ServeOptions = {}): Promise<void> {
  const app = await NestFactory.create(module as never, new ExpressAdapter(), { logger: ['error', 'warn'] });
  await options.configure?.(app);
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;

  const control = await listenControl(app, options.control ?? {});
  const ready: ReadyLine = {
    ready: true,
    url: `http://127.0.0.1:${port}`,
    controlUrl: `http://127.0.0.1:${(control.address() as AddressInfo).port}`,
    pid: process.pid
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);

  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    const force = setTimeout(() => process.exit(1), 5_000);
    force.unref();
    try {
      control.close();
      await app.close();
      await options.onClose?.();
    } finally {
      // A normal exit, so `node --cpu-prof` writes its profile.
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  process.stdin.on('end', () => void shutdown());
  process.stdin.on('error', () => void shutdown());
  process.stdin.resume();
}

/** GET /memory: process.memoryUsage() after a full GC when the child runs with --expose-gc; and the app's own routes. */
function listenControl(app: INestApplication, routes: NonNullable<ServeOptions['control']>): Promise<Server> {
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://control');
    const route = routes[url.pathname];
    if (route) {
      route(app, url).then(
        (answer) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer)),
        (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(error.message)
      );
      return;
    }
    if (request.url !== '/memory') {
      response.writeHead(404).end();
      return;
    }
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc) {
      gc();
      gc();
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ gc: Boolean(gc), ...process.memoryUsage() }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

export function exitOnBootFailure(error: unknown): never {
  process.stderr.write(`bench app failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
