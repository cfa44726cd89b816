/** What a test sees of one response. */
export interface SessionResponse {
  status: number;
  body: any;
  headers: Headers;
  /** The token this response issued (x-session-token), if any. */
  issued: string | undefined;
  setCookie: string | undefined;
}

/**
 * A client that keeps its session token the way a browser (cookie) or an API client (bearer
 * header) would: it sends the last token it was given, and picks up every new one.
 */
export class SessionClient {
  constructor(
    readonly baseUrl: string,
    readonly transport: 'cookie' | 'bearer' = 'cookie',
    public token?: string
  ) {}

  get(path: string, headers: Record<string, string> = {}): Promise<SessionResponse> {
    return this.request('GET', path, undefined, headers);
  }

  post(path: string, body?: unknown, headers: Record<string, string> = {}): Promise<SessionResponse> {
    return this.request('POST', path, body, headers);
  }

  async request(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<SessionResponse> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (this.token && this.transport === 'cookie') headers.cookie ??= `ezsession=${this.token}`;
    if (this.token && this.transport === 'bearer') headers.authorization ??= `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // A redirect is an answer to look at (its status, Location and cookies), not to follow.
      redirect: 'manual',
      signal: this.signal()
    });
    const text = await response.text();
    const issued = response.headers.get('x-session-token') ?? undefined;
    if (issued) this.token = issued;
    return {
      status: response.status,
      body: text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text,
      headers: response.headers,
      issued,
      setCookie: response.headers.get('set-cookie') ?? undefined
    };
  }

  /** An abort signal for one request; none by default. */
  protected signal(): AbortSignal | undefined {
    return undefined;
  }

  /** A second client holding the same token: another tab, or a replayed request. */
  fork(): SessionClient {
    return new SessionClient(this.baseUrl, this.transport, this.token);
  }
}

/** The payload of a token, read without verifying it (tests inspect what the server issued). */
export function claimsOf(token: string | undefined): Record<string, any> {
  if (!token) throw new Error('no token');
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}
