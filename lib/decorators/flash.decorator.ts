import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { requestSessionOf } from '../session/request-session.registry.js';
import { sessionParameter } from './session-parameter.js';

const flashParam = createParamDecorator((_: unknown, context: ExecutionContext) => requestSessionOf(context.switchToHttp().getRequest()).flash);

/** The session's `FlashBag`: values set now are readable now and by the next request that reads them. */
export function Flash(): ParameterDecorator {
  return sessionParameter({ flash: true }, flashParam());
}
