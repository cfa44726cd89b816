import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { BODY_HEADERS, errorPatch, type ResponsePatch } from './response-patch.js';

type Method = (...args: unknown[]) => unknown;
const HELD = Symbol('ezsession:held');

/**
 * Holds a Node response (Express's is one) until `finish` has committed the session: the first
 * writeHead / write / end is queued, `finish(status)` runs, its patch is applied (token headers, or
 * an error answer in place of the app's) and the queued calls are replayed. express-session wraps
 * `res.end` alone because its cookie is known before the commit; a token that says what was
 * stored is only known after it, so streamed bodies and explicit writeHead calls wait too. `finish`
 * is also given the body when the answer is sent whole (a GraphQL answer tells failure in it).
 * Returns false when the headers have already gone out: then nothing can be added to the answer.
 */
export function holdNodeResponse(res: ServerResponse, finish: (status: number, body: unknown) => Promise<ResponsePatch>): boolean {
  const held = res as ServerResponse & { [HELD]?: true };
  if (held[HELD]) return true;
  if (res.headersSent) return false;
  held[HELD] = true;

  const original = { writeHead: res.writeHead, write: res.write, end: res.end, flushHeaders: res.flushHeaders } as Record<string, Method>;
  const queue: Array<{ name: string; args: unknown[] }> = [];
  let status: number | undefined;
  let started = false;

  const hold = (name: string, result: (self: ServerResponse) => unknown) =>
    function (this: ServerResponse, ...args: unknown[]) {
      if (name === 'writeHead' && typeof args[0] === 'number') status ??= args[0];
      queue.push({ name, args });
      if (!started) {
        started = true;
        // An answer sent whole (res.send) is the argument of its end(); a streamed one is not known yet.
        finish(status ?? res.statusCode, name === 'end' ? args[0] : undefined).then(release, (error: unknown) => release(errorPatch(error)));
      }
      return result(this);
    };

  const release = (patch: ResponsePatch) => {
    Object.assign(res, original);
    if (patch.kind === 'error') return answerWithError(res, original, patch, queue);
    const first = queue[0];
    if (first?.name === 'writeHead') first.args = moveHeadersOut(res, first.args);
    for (const [name, value] of patch.headers) addHeader(res, name, value);
    let wrote = false;
    for (const { name, args } of queue) {
      wrote ||= name === 'write';
      original[name].apply(res, args);
    }
    // A write answered `false` while held: whoever streams into the response waits for this.
    if (wrote) res.emit('drain');
  };

  Object.assign(res, {
    writeHead: hold('writeHead', (self) => self),
    write: hold('write', () => false),
    end: hold('end', (self) => self),
    flushHeaders: hold('flushHeaders', () => undefined)
  });
  return true;
}

/** `set-cookie` is appended, so the app's own cookies stay; any other header is replaced. */
function addHeader(res: ServerResponse, name: string, value: string): void {
  if (name !== 'set-cookie') {
    res.setHeader(name, value);
    return;
  }
  const previous = res.getHeader('set-cookie');
  res.setHeader('set-cookie', previous === undefined ? [value] : [...(Array.isArray(previous) ? previous : [String(previous)]), value]);
}

/**
 * Headers given to writeHead would win over ours (Node lets them override setHeader), so they are
 * set on the response first and writeHead is replayed with the status (and message) alone.
 */
function moveHeadersOut(res: ServerResponse, args: unknown[]): unknown[] {
  const [statusCode, second, third] = args;
  const message = typeof second === 'string' ? second : undefined;
  const headers = (typeof second === 'string' ? third : second) as OutgoingHttpHeaders | unknown[] | undefined;
  if (!headers) return args;
  const pairs: Array<[string, unknown]> = Array.isArray(headers)
    ? Array.from({ length: Math.floor(headers.length / 2) }, (_, i) => [String(headers[2 * i]), headers[2 * i + 1]])
    : Object.entries(headers);
  for (const [name, value] of pairs) {
    if (value === undefined) continue;
    if (name.toLowerCase() === 'set-cookie') for (const cookie of [value].flat()) addHeader(res, 'set-cookie', String(cookie));
    else res.setHeader(name, value as string | string[]);
  }
  return message === undefined ? [statusCode] : [statusCode, message];
}

function answerWithError(res: ServerResponse, original: Record<string, Method>, patch: Extract<ResponsePatch, { kind: 'error' }>, held: Array<{ name: string; args: unknown[] }>): void {
  for (const name of BODY_HEADERS) res.removeHeader(name);
  for (const [name, value] of patch.headers) res.setHeader(name, value);
  res.setHeader('content-length', Buffer.byteLength(patch.body));
  res.statusCode = patch.status;
  original.end.call(res, patch.body);
  // The app may still be streaming its own body: drop it rather than write after the end, telling
  // the callbacks of the dropped calls (held or later) and a writer waiting for 'drain' to go on.
  const drop = (args: unknown[]) => {
    const callback = args.at(-1);
    if (typeof callback === 'function') process.nextTick(callback as () => void);
  };
  Object.assign(res, { write: (...args: unknown[]) => (drop(args), true), end: (...args: unknown[]) => (drop(args), res) });
  for (const { args } of held) drop(args);
  if (held.some(({ name }) => name === 'write')) res.emit('drain');
}
