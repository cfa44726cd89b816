// (4) EzSession on MySQL + Redis, configured with the README's three options and nothing else.
import { BadRequestException, Controller, Get, HttpCode, Module, Post, Query } from '@nestjs/common';
import { EzSessionModule, EzSessionService, Jwt, Session } from '../../lib/index.js';
import { RevocationRegistry } from '../../lib/revocation/revocation.registry.js';
import { BENCH_SECRET, exitOnBootFailure, requiredEnv, serve } from './serve.js';
import { CONTENTION_KEY, sessionData, sessionSizeOf } from './session-data.js';

type Data = Record<string, unknown>;

// `ezsession-otel`: the OpenTelemetry SDK and a metric reader, registered before the app boots (EzSession takes its meter then).
if (process.argv.includes('otel')) await (await import('./otel-sdk.js')).installOpenTelemetry();

let counter = 0;
/** When this instance learned of each revoked id (epoch ms), for the revocation bench. */
const heard = new Map<string, number>();

@Controller()
class EzSessionBenchController {
  /** untouched: no EzSession decorator, so no EzSession interceptor on this handler. */
  @Get('plain')
  plain() {
    return { ok: true };
  }

  @Post('login')
  @HttpCode(200)
  login(@Session() session: Data, @Jwt() jwt: Data, @Query('size') size?: string) {
    Object.assign(session, sessionData(sessionSizeOf(size)));
    jwt.role = 'admin';
    return { ok: true };
  }

  /** claims-read: a claim from the verified token, no storage. */
  @Get('claims')
  claims(@Jwt() jwt: Data) {
    return { role: jwt.role ?? null };
  }

  /** stored-read: data of a stored=true session (a Redis hit). */
  @Get('me')
  me(@Session() session: Data) {
    return { userId: session.userId ?? null, cart: session.cart ?? null, n: session.n ?? null };
  }

  /** write and first-visit: a new value every request, so the store really writes; `?size=` makes a first visit store a session of that size. */
  @Post('write')
  @HttpCode(200)
  write(@Session() session: Data, @Query('size') size?: string) {
    if (size !== undefined && session.userId === undefined) Object.assign(session, sessionData(sessionSizeOf(size)));
    session.x = ++counter;
    return { x: session.x };
  }

  /** The contention scenarios: many connections set keys of one session at once, unlocked (the writes merge by key). */
  @Post('set')
  @HttpCode(200)
  set(@Session() session: Data, @Query('key') key: string, @Query('value') value: string) {
    if (!CONTENTION_KEY.test(key ?? '') || !value) throw new BadRequestException('key and value, please');
    session[key] = value;
    return { key, value };
  }

  /** The whole session as a request reads it (the contention check compares it with the row). */
  @Get('all')
  all(@Session({ readonly: true }) session: Data) {
    return session;
  }

  /** locked-inc: read-modify-write under the session's lock. */
  @Post('inc')
  @HttpCode(200)
  inc(@Session({ lock: true }) session: Data) {
    session.n = ((session.n as number | undefined) ?? 0) + 1;
    return { n: session.n };
  }
}

@Module({
  imports: [
    EzSessionModule.forRoot({
      secret: BENCH_SECRET,
      database: { type: 'mysql', url: requiredEnv('BENCH_MYSQL_URL') },
      // The revocation bench hands over a Cluster's nodes or Sentinel options as JSON.
      redis: process.env.BENCH_REDIS_OPTION ? JSON.parse(process.env.BENCH_REDIS_OPTION) : requiredEnv('BENCH_REDIS_URL')
    })
  ],
  controllers: [EzSessionBenchController]
})
class EzSessionBenchModule {}

serve(EzSessionBenchModule, {
  control: {
    // One GC pass, as the scheduled one runs it, timed here so the driver can compare latency during it.
    '/gc': async (app) => {
      const started = performance.now();
      const deleted = await app.get(EzSessionService).gc();
      return { deleted, ms: performance.now() - started };
    },
    // Writes and the writes that lost to a concurrent one and were tried again, since boot: the driver takes the difference over a window.
    '/metrics': async (app) => app.get(EzSessionService).metrics(),
    // The revocation bench: revoke a session id here, and say when this instance heard of ids revoked elsewhere.
    '/revoke': async (app, url) => {
      const startedAt = performance.timeOrigin + performance.now();
      await app.get(EzSessionService).revoke(url.searchParams.get('sid') ?? '');
      return { startedAt };
    },
    '/heard': async () => Object.fromEntries(heard)
  },
  configure: (app) => {
    app.get(RevocationRegistry).onRevoked((sid) => heard.set(sid, performance.timeOrigin + performance.now()));
  }
}).catch(exitOnBootFailure);
