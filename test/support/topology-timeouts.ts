/**
 * Per-test, per-hook and per-suite limits of the topology specs, far above a healthy run on a busy
 * machine (the slowest test, a failover, takes about 7 s): a failure fails, it does not hang the run.
 */
export const TIMEOUTS = {
  /** A test on a healthy topology (all take well under 2 s). */
  test: 60_000,
  /** A test that kills a master and waits for the failover (the helpers give up on that after 30 s). */
  failover: 120_000,
  /** Starting or stopping a topology and its app instances. */
  hook: 120_000,
  /** One adapter's whole describe block. */
  suite: 600_000
} as const;
