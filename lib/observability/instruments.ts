/**
 * Every instrument EzSession reports, and every counter behind them. The four names marked public
 * are a contract (dashboards are built on them); the rest may gain attributes but keep their names.
 * Names and units follow OpenTelemetry's guidance: lower-case, dot-separated, UCUM units.
 */

export type AttributeSet = Readonly<Record<string, string>>;

export interface InstrumentDefinition {
  kind: 'counter' | 'histogram' | 'gauge';
  unit: string;
  description: string;
}

export const INSTRUMENTS = {
  /** Public. */
  'ezsession.requests': { kind: 'counter', unit: '{request}', description: 'Requests that asked for their session, by how it was resolved (once per request)' },
  /** Public. */
  'ezsession.storage.operations': { kind: 'counter', unit: '{operation}', description: 'Round trips to the store (SQL statements) and to the Redis cache' },
  /** Public. */
  'ezsession.writes': { kind: 'counter', unit: '{write}', description: 'Session writes by outcome' },
  /** Public. */
  'ezsession.lock.wait': { kind: 'histogram', unit: 's', description: 'Time to take a session lock (the in-process queue and the named lock)' },
  'ezsession.lock.timeouts': { kind: 'counter', unit: '{timeout}', description: 'Session locks not had within lockTimeout' },
  'ezsession.revocations': { kind: 'counter', unit: '{revocation}', description: 'Revocations announced by this instance (sent) and learnt from other instances (received)' },
  'ezsession.revocation.delay': { kind: 'histogram', unit: 's', description: 'From a revocation on another instance to this one learning it over Redis (wall clocks of both)' },
  'ezsession.gc.runs': { kind: 'counter', unit: '{run}', description: 'Garbage-collection passes' },
  'ezsession.gc.removed': { kind: 'counter', unit: '{row}', description: 'Expired rows and tombstones deleted by garbage collection' },
  'ezsession.cache.refill_skipped': { kind: 'counter', unit: '{refill}', description: 'Cache misses that did not refill because another reader or a writer held the lease (a race avoided)' },
  'ezsession.sessions.active': { kind: 'gauge', unit: '{session}', description: 'Stored, unexpired sessions, as counted by the last GC pass or countActive() (never a query per scrape)' },
  'ezsession.revocations.held': { kind: 'gauge', unit: '{revocation}', description: 'Revoked ids held in memory by this instance' }
} as const satisfies Record<string, InstrumentDefinition>;

export type InstrumentName = keyof typeof INSTRUMENTS;

/**
 * The counters with fixed attributes, by the key `EzSessionService.metrics()` reports them under.
 * Adding one is this one line, and `telemetry.count('key')` where it happens.
 */
export const COUNTERS = {
  requestsNone: ['ezsession.requests', { 'ezsession.resolution': 'none' }],
  requestsClaims: ['ezsession.requests', { 'ezsession.resolution': 'claims' }],
  requestsCache: ['ezsession.requests', { 'ezsession.resolution': 'cache' }],
  requestsStore: ['ezsession.requests', { 'ezsession.resolution': 'store' }],
  refusedSignature: ['ezsession.requests', { 'ezsession.resolution': 'refused', 'ezsession.refusal': 'signature' }],
  refusedMalformed: ['ezsession.requests', { 'ezsession.resolution': 'refused', 'ezsession.refusal': 'malformed' }],
  refusedExpired: ['ezsession.requests', { 'ezsession.resolution': 'refused', 'ezsession.refusal': 'expired' }],
  refusedRevoked: ['ezsession.requests', { 'ezsession.resolution': 'refused', 'ezsession.refusal': 'revoked' }],
  refusedFingerprint: ['ezsession.requests', { 'ezsession.resolution': 'refused', 'ezsession.refusal': 'fingerprint' }],
  writes: ['ezsession.writes', { 'ezsession.outcome': 'written' }],
  writeRetries: ['ezsession.writes', { 'ezsession.outcome': 'retried' }],
  writeConflicts: ['ezsession.writes', { 'ezsession.outcome': 'conflict' }],
  writeRefusals: ['ezsession.writes', { 'ezsession.outcome': 'refused' }],
  // A statement a multi-primary cluster (Galera) refused at commit for a conflict with another node, run again.
  conflictRetries: ['ezsession.writes', { 'ezsession.outcome': 'conflict_retried' }],
  lockTimeouts: ['ezsession.lock.timeouts', {}],
  revocationsSent: ['ezsession.revocations', { 'ezsession.direction': 'sent' }],
  revocationsReceived: ['ezsession.revocations', { 'ezsession.direction': 'received' }],
  gcRuns: ['ezsession.gc.runs', {}],
  gcRemoved: ['ezsession.gc.removed', {}],
  refillsSkipped: ['ezsession.cache.refill_skipped', {}]
} as const satisfies Record<string, readonly [InstrumentName, AttributeSet]>;

export type CounterKey = keyof typeof COUNTERS;

/** Why a token was treated as no token (`ezsession.refusal`). */
export type Refusal = 'signature' | 'malformed' | 'expired' | 'revoked' | 'fingerprint';

export const REFUSED: Record<Refusal, CounterKey> = {
  signature: 'refusedSignature',
  malformed: 'refusedMalformed',
  expired: 'refusedExpired',
  revoked: 'refusedRevoked',
  fingerprint: 'refusedFingerprint'
};

/** `db.system` of a round trip (OpenTelemetry's well-known values). */
export type DbSystem = 'redis' | 'mysql' | 'mariadb' | 'sqlite';

/** Histogram buckets in seconds: a lock is usually had in a millisecond, a timeout is seconds. */
export const LOCK_WAIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const REVOCATION_DELAY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The operation of a statement or command, as `db.operation.name` names it. */
export function operationOf(statement: string): string {
  const lock = /\b(GET_LOCK|RELEASE_LOCK)\s*\(/i.exec(statement);
  if (lock) return lock[1].toUpperCase();
  const body = withoutStatementSettings(statement);
  const space = body.indexOf(' ');
  return (space < 0 ? body : body.slice(0, space)).toUpperCase();
}

/** The statement itself, without the `SET STATEMENT … FOR` that Galera reads carry (`wsrep_sync_wait`). */
export function withoutStatementSettings(sql: string): string {
  return sql.replace(/^\s*SET STATEMENT\s.*?\sFOR\s+/is, '');
}

/**
 * `session.id` on spans: the first three groups of the (random, version 4) id, about 60 random
 * bits. Unique enough to tell sessions apart in a trace store, begins with the 8 characters
 * EzSession's log lines show, costs no hash; and the full id, which addresses a session in
 * `revoke(sid)` or `read(sid)`, is not copied to a trace backend that more people can read.
 */
export function tracedSessionId(sid: string): string {
  return sid.slice(0, 18);
}
