import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Body, Controller, Get, HttpCode, Post, ValidationPipe } from '@nestjs/common';
import { IsString } from 'class-validator';
import { Flash, FlashBag, Jwt, Session } from '../../lib/index.js';
import { ADAPTERS, startApp, type RunningApp } from '../fixtures/fixture-app.js';
import { realStoreOptions } from '../support/fixture-options.js';
import { SessionClient } from '../support/session-client.js';

/** A session typed as a class, the way apps with DTOs everywhere write it. */
class CartSession {
  items?: string[];
}

class AddItem {
  @IsString()
  item!: string;
}

@Controller('cart')
class ValidatedCartController {
  @Post()
  @HttpCode(200)
  add(@Session() session: CartSession, @Body() body: AddItem, @Flash() flash: FlashBag, @Jwt() jwt: Record<string, unknown>) {
    (session.items ??= []).push(body.item);
    flash.set('notice', `Added ${body.item}`);
    jwt.shopper = true;
    return { items: session.items };
  }

  @Get()
  show(@Session() session: CartSession, @Flash() flash: FlashBag) {
    return { items: session.items ?? [], notice: flash.get('notice') ?? null };
  }
}

for (const adapter of ADAPTERS) {
  describe(`a global ValidationPipe that transforms custom decorators (${adapter})`, () => {
    let running: RunningApp;
    before(async () => {
      running = await startApp(adapter, realStoreOptions(), {
        controllers: [ValidatedCartController],
        configure: (app) => app.useGlobalPipes(new ValidationPipe({ transform: true, validateCustomDecorators: true, whitelist: true }))
      });
    });
    after(async () => running?.close());

    it('passes a class-typed @Session(), the FlashBag and the claims through as they are, and their changes are stored', async () => {
      const client = new SessionClient(running.url);
      const added = await client.post('/cart', { item: 'apple' });
      assert.equal(added.status, 200);
      assert.deepEqual(added.body, { items: ['apple'] });
      assert.deepEqual((await client.get('/cart')).body, { items: ['apple'], notice: 'Added apple' });
    });

    it('still validates the body, and a refused request stores nothing', async () => {
      const client = new SessionClient(running.url);
      await client.post('/cart', { item: 'apple' });
      const refused = await client.post('/cart', { item: 42 });
      assert.equal(refused.status, 400);
      assert.deepEqual((await client.get('/cart')).body.items, ['apple']);
    });
  });
}
