// (3) NestJS + @nestjs/jwt, stateless: the guard from the NestJS authentication docs (verifyAsync on
// the bearer token). `node jwt.app.js string` passes the secret as a string, the way the docs and
// most apps do; `node jwt.app.js key` passes a crypto KeyObject (jsonwebtoken 9 accepts one and then
// skips its createPublicKey() probe of string secrets on every verify).
import { createSecretKey } from 'node:crypto';
import {
  Controller,
  Get,
  HttpCode,
  Injectable,
  Module,
  Post,
  Req,
  UnauthorizedException,
  UseGuards,
  type CanActivate,
  type ExecutionContext
} from '@nestjs/common';
import { JwtModule, JwtService } from '@nestjs/jwt';
import { BENCH_SECRET, exitOnBootFailure, serve } from './serve.js';

type Claims = { sub: string; role: string };
type AuthedRequest = { headers: Record<string, string | undefined>; user?: Claims };

const kind = process.argv[2];
if (kind !== 'string' && kind !== 'key') exitOnBootFailure(new Error('usage: jwt.app.js string|key'));

@Injectable()
class AuthGuard implements CanActivate {
  constructor(private readonly jwt: JwtService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthedRequest>();
    const [type, token] = request.headers.authorization?.split(' ') ?? [];
    if (type !== 'Bearer' || !token) throw new UnauthorizedException();
    try {
      request.user = await this.jwt.verifyAsync<Claims>(token);
    } catch {
      throw new UnauthorizedException();
    }
    return true;
  }
}

@Controller()
class JwtController {
  constructor(private readonly jwt: JwtService) {}

  @Get('plain')
  plain() {
    return { ok: true };
  }

  @Post('login')
  @HttpCode(200)
  async login() {
    return { token: await this.jwt.signAsync({ sub: '42', role: 'admin' }) };
  }

  @Get('claims')
  @UseGuards(AuthGuard)
  claims(@Req() req: AuthedRequest) {
    return { role: req.user?.role ?? null };
  }
}

@Module({
  imports: [
    JwtModule.register({
      global: true,
      secret: kind === 'key' ? createSecretKey(Buffer.from(BENCH_SECRET, 'utf8')) : BENCH_SECRET,
      signOptions: { expiresIn: '2h' }
    })
  ],
  controllers: [JwtController],
  providers: [AuthGuard]
})
class JwtAppModule {}

serve(JwtAppModule).catch(exitOnBootFailure);
