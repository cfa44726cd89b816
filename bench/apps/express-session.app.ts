// (2) NestJS + express-session + connect-redis, configured the way its README shows:
// resave: false, saveUninitialized: false, a node-redis client (connect-redis 10 speaks node-redis only).
import { BadRequestException, Controller, Get, HttpCode, Module, Post, Query, Req } from '@nestjs/common';
import { RedisStore } from 'connect-redis';
import type { Request } from 'express';
import session from 'express-session';
import { createClient } from 'redis';
import { BENCH_SECRET, exitOnBootFailure, requiredEnv, serve } from './serve.js';
import { CONTENTION_KEY, sessionData, sessionSizeOf } from './session-data.js';

declare module 'express-session' {
  interface SessionData {
    userId: number;
    role: string;
    cart: unknown[];
    user: Record<string, unknown>;
    x: number;
    n: number;
    /** The contention scenarios' keys (CONTENTION_KEY). */
    [key: string]: unknown;
  }
}

let counter = 0;

@Controller()
class ExpressSessionController {
  /** untouched: the middleware still loads (and touches) the session; the handler ignores it. */
  @Get('plain')
  plain() {
    return { ok: true };
  }

  @Post('login')
  @HttpCode(200)
  login(@Req() req: Request, @Query('size') size?: string) {
    Object.assign(req.session, sessionData(sessionSizeOf(size)));
    req.session.role = 'admin';
    return { ok: true };
  }

  /** claims-read: the nearest thing express-session has to a claim is a field of the loaded session. */
  @Get('claims')
  claims(@Req() req: Request) {
    return { role: req.session.role ?? null };
  }

  @Get('me')
  me(@Req() req: Request) {
    return { userId: req.session.userId ?? null, cart: req.session.cart ?? null, n: req.session.n ?? null };
  }

  /** write and first-visit: a new value every request, so the store really writes; `?size=` makes a first visit store a session of that size. */
  @Post('write')
  @HttpCode(200)
  write(@Req() req: Request, @Query('size') size?: string) {
    if (size !== undefined && req.session.userId === undefined) Object.assign(req.session, sessionData(sessionSizeOf(size)));
    req.session.x = ++counter;
    return { x: req.session.x };
  }

  /** The contention scenarios: each request loads the whole session, sets one key and saves the whole session back. */
  @Post('set')
  @HttpCode(200)
  set(@Req() req: Request, @Query('key') key: string, @Query('value') value: string) {
    if (!CONTENTION_KEY.test(key ?? '') || !value) throw new BadRequestException('key and value, please');
    req.session[key] = value;
    return { key, value };
  }

  /** The whole session as a request reads it. */
  @Get('all')
  all(@Req() req: Request) {
    const { cookie: _cookie, ...data } = req.session;
    return data;
  }

  /** locked-inc: express-session has no lock, so this is a plain read-modify-write (updates can be lost). */
  @Post('inc')
  @HttpCode(200)
  inc(@Req() req: Request) {
    req.session.n = (req.session.n ?? 0) + 1;
    return { n: req.session.n };
  }
}

@Module({ controllers: [ExpressSessionController] })
class ExpressSessionModule {}

async function main(): Promise<void> {
  const client = createClient({ url: requiredEnv('BENCH_REDIS_URL') });
  client.on('error', (error: Error) => process.stderr.write(`redis: ${error.message}\n`));
  await client.connect();
  await serve(ExpressSessionModule, {
    configure: (app) => {
      app.use(
        session({
          store: new RedisStore({ client, prefix: 'sess:' }),
          secret: BENCH_SECRET,
          resave: false,
          saveUninitialized: false
        })
      );
    },
    onClose: () => client.close()
  });
}

main().catch(exitOnBootFailure);
