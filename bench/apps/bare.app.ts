// (1) Bare NestJS: the ceiling. One handler, no session of any kind.
import { Controller, Get, Module } from '@nestjs/common';
import { exitOnBootFailure, serve } from './serve.js';

@Controller()
class BareController {
  @Get('plain')
  plain() {
    return { ok: true };
  }
}

@Module({ controllers: [BareController] })
class BareModule {}

serve(BareModule).catch(exitOnBootFailure);
