import { setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions {
  timeoutMs: number;
  intervalMs?: number;
}

/**
 * Calls `attempt` until it returns something other than `undefined` and returns that.
 * A throw counts as "not yet" (servers refuse connections while they start or fail over);
 * on timeout the error names `what` and carries the last refusal, so a stuck topology
 * says what it was waiting for.
 */
export async function pollUntil<T>(
  what: string,
  attempt: () => Promise<T | undefined>,
  { timeoutMs, intervalMs = 50 }: PollOptions,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'no attempt finished';
  for (;;) {
    try {
      const result = await attempt();
      if (result !== undefined) return result;
      last = 'condition not met';
    } catch (error) {
      last = error instanceof Error ? error.message : error;
    }
    if (Date.now() >= deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await sleep(intervalMs);
  }
}
