import { Inject, Injectable, Logger } from '@nestjs/common';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import type { EzSessionEvent } from '../interfaces/ez-session-options.interface.js';
import type { ResolvedOptions } from '../options/resolved-options.js';

/** The application's audit hooks (`on` option); a hook that throws is logged and changes nothing. */
@Injectable()
export class SessionEvents {
  private readonly logger = new Logger('EzSession');

  constructor(@Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions) {}

  emit(event: EzSessionEvent): void {
    const hook = this.options.hooks[event.type];
    if (!hook) return;
    try {
      hook(event);
    } catch (error) {
      this.logger.error(`The ${event.type} hook threw: ${(error as Error).message}`);
    }
  }
}
