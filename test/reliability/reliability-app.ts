import 'reflect-metadata';
import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { Jwt, Session, type EzSessionModuleOptions } from '../../lib/index.js';
import { startFixtureApp, type AdapterName, type RunningApp } from '../fixtures/fixture-app.js';

type Data = Record<string, unknown>;

/** What the last `/r/copy` or `/r/copy-claims` handler saw after copying its body, for specs that check side effects. */
let lastCopy: { isAdmin: unknown } | undefined;

/** Endpoints only the reliability specs need; the shared fixture controller is mounted next to it. */
@Controller('r')
export class ReliabilityController {
  /** No decorator: whether anything polluted Object.prototype in this process. */
  @Get('pollution')
  pollution() {
    return { isAdmin: ({} as Data).isAdmin ?? null, prototypeKeys: Object.keys(Object.prototype) };
  }

  @Post('store-constructor')
  storeConstructor(@Session() session: Data) {
    session.payload = JSON.parse('{"constructor": {"prototype": {"isAdmin": true}}}');
  }

  @Post('store-constructor-key')
  storeConstructorKey(@Session() session: Data) {
    session['constructor'] = { prototype: { isAdmin: true } };
  }

  /** Copies a JSON body into the session key by key, as handlers commonly do, then acts on what it sees. */
  @Post('copy')
  @HttpCode(200)
  copy(@Session() session: Data, @Body() body: Data) {
    for (const key of Object.keys(body)) session[key] = body[key];
    lastCopy = { isAdmin: session.isAdmin ?? null };
    return { isAdmin: session.isAdmin ?? null };
  }

  @Post('copy-claims')
  @HttpCode(200)
  copyClaims(@Jwt() jwt: Data, @Body() body: Data) {
    for (const key of Object.keys(body)) jwt[key] = body[key];
    lastCopy = { isAdmin: jwt.isAdmin ?? null };
    return { isAdmin: jwt.isAdmin ?? null };
  }

  /** What a handler sees when it looks for a claim the token does not list. */
  @Get('claim-probe')
  claimProbe(@Jwt() jwt: Data) {
    return { isAdmin: jwt.isAdmin ?? null, claims: { ...jwt } };
  }

  @Get('last-copy')
  lastCopy() {
    return lastCopy ?? { isAdmin: null };
  }

  @Post('forget-copy')
  @HttpCode(200)
  forgetCopy() {
    lastCopy = undefined;
    return { ok: true };
  }

  /** A locked read-modify-write that keeps its session's lock (and its pooled connection) for `ms`. */
  @Post('hold/:ms')
  @HttpCode(200)
  async hold(@Session({ lock: true }) session: Data, @Param('ms') ms: string) {
    await new Promise((resolve) => setTimeout(resolve, Number(ms)));
    session.n = ((session.n as number | undefined) ?? 0) + 1;
    return { n: session.n };
  }
}

/** Like `startFixtureApp`, with the reliability controller mounted next to the fixture controller. */
/** The fixture app with the reliability endpoints mounted too. */
export function startReliabilityApp(adapter: AdapterName, options: EzSessionModuleOptions): Promise<RunningApp> {
  return startFixtureApp(adapter, options, { controllers: [ReliabilityController] });
}
