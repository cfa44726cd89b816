import { Body, Controller, Get, Header, Post, Redirect, Req } from '@nestjs/common';
import { EzSessionService, Flash, FlashBag, Jwt, Session } from '../lib/index.js';
import { renderPage } from './views.js';

type SessionData = Record<string, unknown>;
type Claims = Record<string, unknown>;

/** Accepts a trimmed name of 1 to 40 characters; anything else is `undefined`. */
export function cleanName(value: unknown): string | undefined {
  const name = typeof value === 'string' ? value.trim() : '';
  return name.length > 0 && name.length <= 40 ? name : undefined;
}

/**
 * The HTML page and its forms. Every form posts and answers 303 See Other back to `/`, so a
 * reload never re-posts; the flash message carries the outcome to that next page view.
 */
@Controller()
export class AppController {
  constructor(private readonly sessions: EzSessionService) {}

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  page(@Session() session: SessionData, @Jwt() jwt: Claims, @Flash() flash: FlashBag): string {
    const user = session.user as { name: string } | undefined;
    return renderPage({
      user: user?.name,
      counter: typeof session.counter === 'number' ? session.counter : 0,
      role: typeof jwt.role === 'string' ? jwt.role : undefined,
      // get() consumes the message: the next page view no longer shows it.
      notice: flash.get<string>('notice')
    });
  }

  @Post('login')
  @Redirect('/', 303)
  async login(
    @Req() request: object,
    @Body('name') name: unknown,
    @Session() session: SessionData,
    @Jwt() jwt: Claims,
    @Flash() flash: FlashBag
  ): Promise<void> {
    const clean = cleanName(name);
    if (!clean) {
      flash.set('notice', 'Enter a name of 1 to 40 characters to log in');
      return;
    }
    // A new session id at login: an id someone planted in this browser beforehand is worth nothing.
    // Only the counter outlives the login: anything else in the visitor's session (a planted returnTo, say) goes.
    await this.sessions.regenerate(request, { keep: ['counter'] });
    session.user = { name: clean };
    jwt.role = 'member';
    flash.set('notice', `Logged in as ${clean}`);
  }

  /** `lock: true`: two clicks at once never read the same old value, so no count is lost. */
  @Post('counter')
  @Redirect('/', 303)
  count(@Session({ lock: true }) session: SessionData, @Flash() flash: FlashBag): void {
    const counter = (typeof session.counter === 'number' ? session.counter : 0) + 1;
    session.counter = counter;
    flash.set('notice', `Counter is now ${counter}`);
  }

  /**
   * destroy() deletes every key of the session and revokes its id, so copies of the old token (and
   * the role claim they carry) stop working. The flash set afterwards goes to a new, empty session.
   */
  @Post('logout')
  @Redirect('/', 303)
  async logout(@Req() request: object, @Flash() flash: FlashBag): Promise<void> {
    await this.sessions.destroy(request);
    flash.set('notice', 'Logged out');
  }
}
