import { Inject, Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { PUBLIC_ROUTE_METADATA, REQUIRE_SESSION_METADATA } from '../decorators/require-session.decorator.js';
import { EZ_SESSION_OPTIONS } from '../ez-session.constants.js';
import { EzSessionConfigError } from '../ez-session.errors.js';
import { EzSessionService } from '../ez-session.service.js';
import type { EzSessionRequirement } from '../interfaces/ez-session-options.interface.js';
import { EzSessionGraphQLError, type EzSessionGraphQLExtensions } from '../graphql/graphql-error.js';
import type { ResolvedOptions } from '../options/resolved-options.js';
import { wsException, type EzSessionWsError } from '../ws/ws-error.js';

/** What a refused request lacked, as the 401 body lists it. */
export interface MissingSessionParts {
  keys: string[];
  claims: string[];
}

/**
 * Refuses a request with 401 unless its session has the keys and claims the route requires
 * (`@RequireSession(...)`, else the module's `guard` option). Per route with `@UseGuards`, or for
 * the whole app as an `APP_GUARD` with `@PublicRoute()` on what stays open. Claims are checked
 * first and cost no I/O; keys cost one read of the session, shared with the handler's `@Session()`.
 * On a resolver the refusal is a GraphQL error with `extensions.code` `UNAUTHENTICATED`; on a
 * gateway's message handler, a WsException whose data has that `code`.
 * Subclass it and override `requirementOf` or `refuse` to change what it checks or answers.
 */
@Injectable()
export class EzSessionGuard implements CanActivate {
  constructor(
    protected readonly sessions: EzSessionService,
    protected readonly reflector: Reflector,
    @Inject(EZ_SESSION_OPTIONS) protected readonly options: ResolvedOptions
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE_METADATA, targets)) return true;
    const { keys = [], claims = [], freshWithin } = this.requirementOf(context);

    const presentClaims = this.sessions.claims(context);
    if (freshWithin !== undefined) {
      // authenticatedAt rides in the token: no I/O.
      const authenticatedAt = this.sessions.authenticatedAt(context);
      if (!authenticatedAt || this.options.clock.now() - authenticatedAt.getTime() > freshWithin * 1000) return this.refuseStale(context, freshWithin, authenticatedAt);
    }
    const missingClaims = claims.filter((name) => absent(presentClaims[name]));
    if (missingClaims.length > 0) return this.refuse(context, { keys: [], claims: missingClaims });
    if (keys.length === 0) return true;

    return this.sessions.session(context).then((data) => {
      const missingKeys = keys.filter((key) => absent(data[key]));
      return missingKeys.length === 0 || this.refuse(context, { keys: missingKeys, claims: [] });
    });
  }

  /** The route's requirement; a route with none at all is a mistake, reported as one. */
  protected requirementOf(context: ExecutionContext): EzSessionRequirement {
    const requirement =
      this.reflector.getAllAndOverride<EzSessionRequirement | undefined>(REQUIRE_SESSION_METADATA, [context.getHandler(), context.getClass()]) ?? this.options.guard;
    if (!requirement || ((requirement.keys?.length ?? 0) === 0 && (requirement.claims?.length ?? 0) === 0 && requirement.freshWithin === undefined)) {
      throw new EzSessionConfigError(
        'guard',
        `is not set and ${context.getClass().name}.${context.getHandler().name} has no @RequireSession({ keys, claims, freshWithin }): EzSessionGuard has nothing to check there (mark open routes with @PublicRoute())`
      );
    }
    return requirement;
  }

  /** Throws the refusal of a session whose last authentication is older than `freshWithin` seconds (or unknown): 401, code `SESSION_NOT_FRESH`. */
  protected refuseStale(context: ExecutionContext, freshWithin: number, authenticatedAt: Date | undefined): never | Promise<never> {
    const message = staleMessage(freshWithin, authenticatedAt);
    return deny(context, {
      graphql: [message, { code: 'SESSION_NOT_FRESH', freshWithin }],
      ws: { status: 'error', code: 'SESSION_NOT_FRESH', message, freshWithin },
      http: { statusCode: 401, error: 'Unauthorized', code: 'SESSION_NOT_FRESH', message, freshWithin }
    });
  }

  /** Throws the refusal of a session without the keys or claims the route needs: 401 (`UNAUTHENTICATED` in GraphQL and on sockets). */
  protected refuse(context: ExecutionContext, missing: MissingSessionParts): never | Promise<never> {
    const needs = `a session with ${[...missing.keys.map((key) => `session key "${key}"`), ...missing.claims.map((name) => `claim "${name}"`)].join(' and ')}; sign in first.`;
    return deny(context, {
      graphql: [`This operation needs ${needs}`, { code: 'UNAUTHENTICATED', missing }],
      ws: { status: 'error', code: 'UNAUTHENTICATED', message: `This message needs ${needs}`, missing },
      http: { statusCode: 401, error: 'Unauthorized', message: `This route needs ${needs}`, missing }
    });
  }
}

/** One refusal in each transport's form. */
interface Refusal {
  graphql: [message: string, extensions: EzSessionGraphQLExtensions];
  ws: EzSessionWsError;
  http: Record<string, unknown>;
}

/** Throws `refusal` in the form the context's transport answers (a promise of it for a gateway, whose exception class is loaded on demand). */
function deny(context: ExecutionContext, refusal: Refusal): never | Promise<never> {
  const type = context.getType<string>();
  if (type === 'graphql') throw new EzSessionGraphQLError(...refusal.graphql);
  if (type === 'ws') {
    return wsException(refusal.ws).then((error) => {
      throw error;
    });
  }
  throw new UnauthorizedException(refusal.http);
}

/** What a `freshWithin` refusal says, in every transport: code `SESSION_NOT_FRESH`, so a client knows to ask for the password again (not to sign in from scratch). */
function staleMessage(freshWithin: number, authenticatedAt: Date | undefined): string {
  return `This action needs a sign-in within the last ${freshWithin} s (${authenticatedAt ? `the last was at ${authenticatedAt.toISOString()}` : 'this session has none on record'}); authenticate again.`;
}

function absent(value: unknown): boolean {
  return value === undefined || value === null;
}
