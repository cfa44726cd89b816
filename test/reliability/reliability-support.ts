import { spawn, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { decodeCached } from '../../lib/cache/session-cache.js';
import type { EzSessionModuleOptions } from '../../lib/index.js';
import { TEST_SECRET, type RunningApp } from '../fixtures/fixture-app.js';
import { SessionClient, type SessionResponse } from '../support/session-client.js';

/** Options on the given servers, with a table and key prefix of their own. */
export function storeOptions(
  mysqlUrl: string,
  redisUrl: string,
  overrides: Partial<EzSessionModuleOptions> = {}
): EzSessionModuleOptions & { tableName: string; keyPrefix: string } {
  const suffix = randomBytes(4).toString('hex');
  return {
    secret: TEST_SECRET,
    database: { type: 'mysql', url: mysqlUrl },
    redis: redisUrl,
    tableName: `ez_rel_${suffix}`,
    keyPrefix: `ezs-rel-${suffix}:`,
    ...overrides
  } as EzSessionModuleOptions & { tableName: string; keyPrefix: string };
}

/**
 * Closes an app whose clients may have aborted requests: a connection the client gave up on is
 * closed first, or the HTTP server would wait for Node's headers timeout (60 s) before closing.
 */
export async function closeApp(running: RunningApp | undefined): Promise<void> {
  if (!running) return;
  (running.app.getHttpServer() as Server).closeAllConnections();
  await running.close();
}

/** A response, or `'hung'` when the request did not finish within the client's bound. */
export type Outcome = SessionResponse | 'hung';

/**
 * A SessionClient whose every request is aborted after `boundMs`: a request that hangs shows up
 * as `'hung'` (through `settle`) instead of stalling the suite.
 */
export class BoundedClient extends SessionClient {
  constructor(
    baseUrl: string,
    readonly boundMs: number,
    transport: 'cookie' | 'bearer' = 'cookie',
    token?: string
  ) {
    super(baseUrl, transport, token);
  }

  protected override signal(): AbortSignal {
    return AbortSignal.timeout(this.boundMs);
  }

  override fork(): BoundedClient {
    return new BoundedClient(this.baseUrl, this.boundMs, this.transport, this.token);
  }

  /** The response, or `'hung'` if the bound passed first. */
  async settle(request: Promise<SessionResponse>): Promise<Outcome> {
    try {
      return await request;
    } catch (error) {
      if ((error as Error).name === 'TimeoutError') return 'hung';
      throw error;
    }
  }
}

/** Reads what MySQL holds for sessions of one table, on a connection of its own. */
export class MySqlProbe {
  private constructor(
    private readonly connection: Connection,
    private readonly table: string
  ) {}

  static async open(url: string, table: string): Promise<MySqlProbe> {
    return new MySqlProbe(await createConnection(url), table);
  }

  /** The stored data of `sid`, parsed; `undefined` when there is no row. */
  async data(sid: string): Promise<Record<string, unknown> | undefined> {
    const [rows] = await this.connection.query<RowDataPacket[]>(`SELECT data FROM \`${this.table}\` WHERE sid = ?`, [sid]);
    return rows[0] ? JSON.parse(rows[0].data) : undefined;
  }

  async isFreeLock(name: string): Promise<boolean> {
    const [[row]] = await this.connection.query<RowDataPacket[]>('SELECT IS_FREE_LOCK(?) AS free', [name]);
    return Number(row.free) === 1;
  }

  async close(): Promise<void> {
    await this.connection.end().catch(() => this.connection.destroy());
  }
}

const ADMIN_NAME = 'ezs-reliability-admin';

/** An admin connection to a Redis the spec owns: fault injection and inspection of the app's cache. */
export class RedisProbe {
  readonly client: Redis;

  constructor(url: string) {
    this.client = new Redis(url, { connectionName: ADMIN_NAME, maxRetriesPerRequest: null });
    this.client.on('error', () => {}); // the spec kills this Redis on purpose
  }

  /** The cached document of `sid` (data part), parsed; `undefined` when the key holds no entry (absent, or a refill lease). */
  async cachedData(prefix: string, sid: string): Promise<Record<string, unknown> | undefined> {
    const entry = decodeCached(await this.client.get(prefix + sid));
    return entry && JSON.parse(entry.data);
  }

  /** Lines of CLIENT LIST for clients other than this probe. */
  async appClients(): Promise<Array<Record<string, string>>> {
    const list = (await this.client.client('LIST')) as string;
    return list
      .split('\n')
      .filter(Boolean)
      .map((line) => Object.fromEntries(line.split(' ').map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)])))
      .filter((client) => client.name !== ADMIN_NAME);
  }

  /** Whether some app client connected after `sinceId` has read an entry (the cache's read transaction or script: so the app reads the cache again). */
  async appServedGetSince(sinceId: number): Promise<boolean> {
    return (await this.appClients()).some((client) => Number(client.id) > sinceId && (client.cmd === 'get' || client.cmd === 'evalsha' || client.cmd === 'exec'));
  }

  /** The highest client id so far (this probe included): clients connecting later get higher ids, until Redis restarts. */
  async lastClientId(): Promise<number> {
    const ids = (await this.appClients()).map((client) => Number(client.id));
    return Math.max(Number(await this.client.client('ID')), ...ids);
  }

  close(): void {
    this.client.disconnect();
  }
}

/**
 * Reads `/me` until the app has reconnected to Redis and served a read from it (or `limitMs`
 * passed), returning every body seen: a stale cached value shows up in the last ones.
 */
export async function readsUntilCacheServes(client: SessionClient, redis: RedisProbe, sinceId: number, limitMs = 12_000): Promise<unknown[]> {
  const bodies: unknown[] = [];
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const response = await client.get('/me');
    bodies.push(response.status === 200 ? response.body : { status: response.status, body: response.body });
    if (await redis.appServedGetSince(sinceId)) {
      // One more read now that the app is surely reading the cache again.
      const last = await client.get('/me');
      bodies.push(last.status === 200 ? last.body : { status: last.status, body: last.body });
      return bodies;
    }
    await sleep(50);
  }
  throw new Error(`the app did not read from Redis again within ${limitMs} ms`);
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Another process holding a session's MySQL lock on its own connection (see lock-holder.ts).
 * `busySeconds` > 0: once locked it starts `SELECT SLEEP(busySeconds)`, so a kill finds a running statement.
 */
export async function spawnLockHolder(mysqlUrl: string, sid: string, busySeconds = 0): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(here, 'lock-holder.js'), mysqlUrl, sid, String(busySeconds)], {
    stdio: ['ignore', 'pipe', 'pipe']
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const expected = busySeconds > 0 ? 'busy' : 'locked';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(expected)) resolve();
    });
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`lock holder exited with ${code}: ${output}`)));
  });
  return child;
}

/** SIGKILLs one child by its own handle and waits until it is gone. */
export async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** The sid in a token, read without verification. */
export function sidOf(token: string | undefined): string {
  if (!token) throw new Error('no token');
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')).sid;
}
