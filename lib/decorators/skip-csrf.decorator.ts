import { SetMetadata } from '@nestjs/common';
import { SKIP_CSRF_METADATA } from '../policy/cross-origin.policy.js';

/**
 * Exempts this handler (or every handler of this controller) from EzSession's cross-origin check:
 * a webhook, or a form other sites are meant to post to. Exact by construction: it covers the
 * routes it is written on, nothing else. It is read where the session is reached through the
 * ExecutionContext (decorators, guards, `EzSessionService` calls given the context); a session
 * first reached through the bare request object (`destroy(req)`) is still checked.
 */
export const SkipCsrf = () => SetMetadata(SKIP_CSRF_METADATA, true);
