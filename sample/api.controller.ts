import { BadRequestException, Body, Controller, Get, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { EzSessionGuard, EzSessionService, Jwt, RequireSession, Session } from '../lib/index.js';
import { cleanName } from './app.controller.js';

type SessionData = Record<string, unknown>;
type Claims = Record<string, unknown>;

/**
 * The same session for clients that send headers instead of cookies: the token of a response that
 * changed the session comes back in the `x-session-token` header; send it as `Authorization: Bearer`.
 */
@Controller('api')
export class ApiController {
  constructor(private readonly sessions: EzSessionService) {}

  @Post('login')
  @HttpCode(200)
  async login(@Req() request: object, @Body() body: { name?: unknown } | undefined, @Session() session: SessionData, @Jwt() jwt: Claims) {
    const name = cleanName(body?.name);
    if (!name) throw new BadRequestException('Send a JSON body {"name": "..."} with a name of 1 to 40 characters');
    await this.sessions.regenerate(request, { keep: ['counter'] });
    session.user = { name };
    jwt.role = 'member';
    return { user: { name }, role: 'member' };
  }

  /**
   * Signed-in clients only: EzSessionGuard answers 401 with a JSON body naming what is missing.
   * The guard's read of the session is the handler's too: a stored session is one cache GET.
   */
  @Get('me')
  @UseGuards(EzSessionGuard)
  @RequireSession({ keys: ['user'] })
  me(@Session({ readonly: true }) session: SessionData, @Jwt() jwt: Claims) {
    const user = session.user as { name: string };
    return {
      user: { name: user.name },
      role: typeof jwt.role === 'string' ? jwt.role : null,
      counter: typeof session.counter === 'number' ? session.counter : 0
    };
  }

  /** Logout from a handler that takes only the request: the response clears the cookie. */
  @Post('logout')
  @HttpCode(204)
  async logout(@Req() request: object): Promise<void> {
    await this.sessions.destroy(request);
  }
}
