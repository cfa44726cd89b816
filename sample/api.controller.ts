import { BadRequestException, Body, Controller, Get, HttpCode, Post, Req } from '@nestjs/common';
import { EzSessionService, Jwt, Session } from '../lib/index.js';
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
    await this.sessions.regenerate(request);
    session.user = { name };
    jwt.role = 'member';
    return { user: { name }, role: 'member' };
  }

  /** Read-only: no lock and no data write; a stored session is one cache GET (a database SELECT on a miss). */
  @Get('me')
  me(@Session({ readonly: true }) session: SessionData, @Jwt() jwt: Claims) {
    const user = session.user as { name: string } | undefined;
    return {
      user: user ? { name: user.name } : null,
      role: typeof jwt.role === 'string' ? jwt.role : null,
      counter: typeof session.counter === 'number' ? session.counter : 0
    };
  }
}
