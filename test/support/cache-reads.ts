/**
 * What `n` batches of cached reads send a single Redis server (standalone or Sentinel), as MONITOR
 * and INFO commandstats count them: one round trip each, `MULTI / INFO replication / MGET / EXEC`.
 * A Redis Cluster reads with one EVALSHA per key instead.
 */
export function cacheReads(n = 1): Record<'multi' | 'info' | 'mget' | 'exec', number> {
  return { multi: n, info: n, mget: n, exec: n };
}
