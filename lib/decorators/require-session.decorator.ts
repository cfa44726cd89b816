import { SetMetadata } from '@nestjs/common';
import type { EzSessionRequirement } from '../interfaces/ez-session-options.interface.js';

export const REQUIRE_SESSION_METADATA = 'ez-session:require';
export const PUBLIC_ROUTE_METADATA = 'ez-session:public';

/**
 * What `EzSessionGuard` checks on this handler or controller: session keys that must be present
 * (one read of the session) and claims that must be present (no I/O). A handler's own
 * requirement replaces its controller's, which replaces the module's `guard` option.
 */
export const RequireSession = (requirement: EzSessionRequirement) => SetMetadata(REQUIRE_SESSION_METADATA, requirement);

/** Lets every request through `EzSessionGuard` (an `APP_GUARD`) on this handler or controller: login pages, health checks. */
export const PublicRoute = () => SetMetadata(PUBLIC_ROUTE_METADATA, true);
