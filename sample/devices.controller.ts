import { Controller, Get, Header, Param, Post, Redirect, Req } from '@nestjs/common';
import { EzSessionService, Flash, FlashBag, Session } from '../lib/index.js';
import { renderDevicesPage, renderSignedOut } from './views.js';

type SessionData = Record<string, unknown>;

/**
 * "Where you're signed in": every stored session of the signed-in user with its device, the
 * current one marked; sign out one of them, or all the others. Each runs on any instance and
 * reaches the other devices on their next request.
 */
@Controller('devices')
export class DevicesController {
  constructor(private readonly sessions: EzSessionService) {}

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  async page(@Req() request: object, @Session({ readonly: true }) session: SessionData, @Flash() flash: FlashBag): Promise<string> {
    const userId = session.userId;
    if (typeof userId !== 'string') return renderSignedOut();
    const devices = await this.sessions.listForUser(userId, request);
    return renderDevicesPage(userId, devices, flash.get<string>('notice'));
  }

  @Post('revoke-others')
  @Redirect('/devices', 303)
  async revokeOthers(@Req() request: object, @Flash() flash: FlashBag): Promise<void> {
    const count = await this.sessions.revokeOthers(request);
    flash.set('notice', count === 1 ? 'Signed out of 1 other device' : `Signed out of ${count} other devices`);
  }

  /** revokeForUser checks that the session is this user's: a forged id of someone else's does nothing. */
  @Post(':sid/revoke')
  @Redirect('/devices', 303)
  async revokeOne(@Session({ readonly: true }) session: SessionData, @Param('sid') sid: string, @Flash() flash: FlashBag): Promise<void> {
    const userId = session.userId;
    const revoked = typeof userId === 'string' && (await this.sessions.revokeForUser(userId, sid));
    flash.set('notice', revoked ? 'Signed out of that device' : 'That session was already gone');
  }
}
