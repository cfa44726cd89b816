import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Logger, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { EzSessionModule, type EzSessionModuleOptions } from '../lib/index.js';
import { ApiController } from './api.controller.js';
import { AppController } from './app.controller.js';
import { DevicesController } from './devices.controller.js';
import { ObservabilityController } from './observability.controller.js';

/** How long "remember me" keeps a session, idle or not. */
export const REMEMBER_ME_SECONDS = 30 * 86400;

/** Where the embedded store keeps its file when MYSQL_URL is not set (relative to the working directory). */
export const SQLITE_FILE = 'sample/ezsession.sqlite';

/**
 * EzSession options from the environment: MySQL at MYSQL_URL, else an embedded SQLite file;
 * Redis at REDIS_URL, else EzSession's in-process cache; the signing secret from SESSION_SECRET.
 */
export function sessionOptions(env: NodeJS.ProcessEnv = process.env): EzSessionModuleOptions {
  let secret = env.SESSION_SECRET;
  if (!secret) {
    secret = randomBytes(48).toString('base64url');
    new Logger('Sample').warn(
      'SESSION_SECRET is not set: using a random secret for this run only. Sessions will not survive a restart; ' +
        'set SESSION_SECRET to at least 32 random characters (e.g. `openssl rand -base64 48`).'
    );
  }
  return {
    secret,
    database: env.MYSQL_URL
      ? { type: 'mysql', url: env.MYSQL_URL }
      : { type: 'sqljs', location: resolve(SQLITE_FILE), autoSave: true },
    ...(env.REDIS_URL ? { redis: env.REDIS_URL } : {}),
    // The Devices page lists a user's sessions by this key; "remember me" may keep one for 30 days,
    // and without it the cookie ends with the browser.
    userId: { session: 'userId' },
    maxIdleTimeout: REMEMBER_ME_SECONDS,
    maxAbsoluteTimeout: REMEMBER_ME_SECONDS,
    cookie: { browserSession: true }
  };
}

/** One line for the start-up log: which store and cache are in use (passwords hidden). */
export function describeStorage(env: NodeJS.ProcessEnv = process.env): string {
  const store = env.MYSQL_URL ? `MySQL at ${withoutPassword(env.MYSQL_URL)}` : `embedded SQLite file ${resolve(SQLITE_FILE)}`;
  const cache = env.REDIS_URL ? `Redis at ${withoutPassword(env.REDIS_URL)}` : 'in-process (this process only)';
  return `store: ${store}; cache: ${cache}`;
}

function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

@Module({
  // forRootAsync: the options are built when the module is created, so the environment is read then.
  imports: [EzSessionModule.forRootAsync({ useFactory: () => sessionOptions() }), TerminusModule],
  controllers: [AppController, ApiController, DevicesController, ObservabilityController]
})
export class AppModule {}
