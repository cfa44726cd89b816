import { UseInterceptors } from '@nestjs/common';
import { EzSessionInterceptor } from '../ez-session.interceptor.js';
import { recordUsage, type SessionUsage } from '../session/session-usage.js';

/**
 * Builds an EzSession parameter decorator. The handler's first one also puts the session
 * interceptor on that handler: handlers without an EzSession decorator carry no interceptor at
 * all, so they cost what they would cost without EzSession (a global interceptor alone costs every
 * request Nest's interceptor chain).
 */
export function sessionParameter(usage: Partial<SessionUsage>, parameter: ParameterDecorator): ParameterDecorator {
  return (target, key, index) => {
    if (key === undefined) throw new Error('EzSession decorators go on handler parameters, not constructor parameters');
    const descriptor = Object.getOwnPropertyDescriptor(target, key)!;
    if (recordUsage(descriptor.value as object, usage)) UseInterceptors(EzSessionInterceptor)(target, key, descriptor);
    parameter(target, key, index);
  };
}
