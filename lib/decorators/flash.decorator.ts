import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { requestSessionOf } from '../session/request-session.registry.js';
import { recordUsage } from '../session/session-usage.js';
import { handlerOf } from './session.decorator.js';

const flashParam = createParamDecorator((_: unknown, context: ExecutionContext) => requestSessionOf(context.switchToHttp().getRequest()).flash);

/** The session's `FlashBag`: values set now are readable now and by the next request that reads them. */
export function Flash(): ParameterDecorator {
  return (target, key, index) => {
    recordUsage(handlerOf(target, key), { flash: true });
    flashParam()(target, key, index);
  };
}
