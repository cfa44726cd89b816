import { Inject, Injectable } from '@nestjs/common';
import { EZ_SESSION_OPTIONS } from './ez-session.constants.js';
import type { ResolvedOptions } from './options/resolved-options.js';
import { decodeDocument } from './session/session-document.js';
import { SessionRepository } from './storage/session.repository.js';

/** Operations on sessions from outside a request's own decorators (support tools, admin views). */
@Injectable()
export class EzSessionService {
  constructor(
    private readonly repository: SessionRepository,
    @Inject(EZ_SESSION_OPTIONS) private readonly options: ResolvedOptions
  ) {}

  /** The data of a live stored session, read from the durable store; `undefined` when there is none. */
  async read(sid: string): Promise<Record<string, unknown> | undefined> {
    const row = await this.repository.find(sid);
    return row ? decodeDocument(row.data, row.flash).data : undefined;
  }

  /** Stored, unexpired sessions (one indexed COUNT). */
  async countActive(): Promise<number> {
    return this.repository.countActive();
  }

  /** The lifetime applied to stored sessions, in seconds. */
  get idleTimeout(): number {
    return this.options.idleTimeout;
  }
}
