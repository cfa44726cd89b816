/** Every throwaway server listens here: nothing the tests start is reachable from outside. */
export const LOOPBACK = '127.0.0.1';

/** A TCP address, in the shape ioredis takes for startup nodes and Sentinels. */
export interface Endpoint {
  host: string;
  port: number;
}

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.host === b.host && a.port === b.port;
}

export function describeEndpoint({ host, port }: Endpoint): string {
  return `${host}:${port}`;
}
