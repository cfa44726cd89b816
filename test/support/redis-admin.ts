import { Redis, type RedisOptions } from 'ioredis';
import type { Endpoint } from './endpoint.js';

/**
 * Runs `fn` on a fresh connection that never reconnects or queues: against a dead or
 * failing-over server the call fails at once, which is what the topology polls want.
 */
export async function withRedis<T>(
  endpoint: Endpoint,
  fn: (client: Redis) => Promise<T>,
  options: RedisOptions = {},
): Promise<T> {
  const client = new Redis({
    ...endpoint,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 1_000,
    // A frozen server must not hang a poll forever.
    commandTimeout: 2_000,
    ...options,
  });
  client.on('error', () => {}); // failures surface through connect() and the commands
  try {
    await client.connect();
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

/** `INFO [section]` as a map of its `field:value` lines. */
export async function redisInfo(endpoint: Endpoint, section = 'default'): Promise<Record<string, string>> {
  return withRedis(endpoint, async (client) => parseInfo(await client.info(section)));
}

export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}
