/** Where the lines go: a Nest Logger, or anything with its `error` method. */
export interface ErrorLineSink {
  error(message: string): void;
}

/** How many distinct kinds are remembered; more (which a driver does not produce) start the count over. */
const MAX_KINDS = 256;

/**
 * Store failures for the operator: every client is told only "unavailable", so the driver's
 * detail must reach the log, but an outage fails every request and must not flood it. Per kind
 * (the driver's error code), the first failure is logged at once and then at most one line per
 * `intervalMs`, saying how many like it were left out meanwhile. Times are the monotonic clock's:
 * the session clock may be a test's, standing still.
 */
export class StoreErrorLog {
  private readonly kinds = new Map<string, { loggedAt: number; suppressed: number }>();

  constructor(
    private readonly sink: ErrorLineSink,
    readonly intervalMs = 10_000,
    private readonly now: () => number = () => performance.now()
  ) {}

  /** Logs `cause` (or counts it, when a line of its kind went out less than `intervalMs` ago). */
  report(cause: unknown, context: { operation: string; sid?: string }): void {
    const kind = kindOf(cause);
    const now = this.now();
    const seen = this.kinds.get(kind);
    if (seen && now - seen.loggedAt < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    if (!seen && this.kinds.size >= MAX_KINDS) this.kinds.clear();
    const suppressed = seen?.suppressed ?? 0;
    this.kinds.set(kind, { loggedAt: now, suppressed: 0 });
    const session = context.sid === undefined ? '' : ` of session ${sidPrefix(context.sid)}`;
    const more = suppressed > 0 ? ` (${suppressed} more ${kind} failure${suppressed === 1 ? '' : 's'} in the last ${Math.round((now - seen!.loggedAt) / 1000)} s not logged)` : '';
    this.sink.error(`Session store unavailable (${kind}) in ${context.operation}${session}: ${messageOf(cause)}${more}; clients were answered 503 SESSION_STORE_UNAVAILABLE`);
  }
}

/** The first 8 characters of a session id: enough to find it in a trace, never the whole id. */
export function sidPrefix(sid: string): string {
  return `${sid.slice(0, 8)}…`;
}

function kindOf(cause: unknown): string {
  const { code, errno } = (cause ?? {}) as { code?: unknown; errno?: unknown };
  if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) return code;
  if (typeof errno === 'number') return `errno ${errno}`;
  return cause instanceof Error && /did not answer|was free within/.test(cause.message) ? 'TIMEOUT' : 'ERROR';
}

function messageOf(cause: unknown): string {
  if (cause instanceof AggregateError && cause.errors.length > 0) return cause.errors.map((error) => messageOf(error)).join('; ');
  return cause instanceof Error ? cause.message || cause.name : String(cause);
}
