import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { BODY_HEADERS, errorPatch, type ResponsePatch } from './response-patch.js';

type Method = (...args: unknown[]) => unknown;
const HELD = Symbol('ezsession:held');

/** A held response's state: the calls queued until the commit, and what to do with them. */
interface Hold {
  original: Record<HeldMethod, Method>;
  queue: Array<{ name: HeldMethod; args: unknown[] }>;
  status: number | undefined;
  started: boolean;
  finish: (status: number, body: unknown) => Promise<ResponsePatch>;
}

type HeldMethod = 'writeHead' | 'write' | 'end' | 'flushHeaders';
type HeldResponse = ServerResponse & { [HELD]?: Hold };

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
  const held = res as HeldResponse;
  if (held[HELD]) return true;
  if (res.headersSent) return false;
  // One state object and shared methods, not closures per response: this runs on every write.
  held[HELD] = { original: { writeHead: res.writeHead, write: res.write, end: res.end, flushHeaders: res.flushHeaders } as Record<HeldMethod, Method>, queue: [], status: undefined, started: false, finish };
  res.writeHead = heldWriteHead as ServerResponse['writeHead'];
  res.write = heldWrite as ServerResponse['write'];
  res.end = heldEnd as ServerResponse['end'];
  res.flushHeaders = heldFlushHeaders;
  return true;
}

function heldWriteHead(this: HeldResponse, ...args: unknown[]): ServerResponse {
  const hold = this[HELD]!;
  if (typeof args[0] === 'number') hold.status ??= args[0];
  queue(this, hold, 'writeHead', args);
  return this;
}

function heldWrite(this: HeldResponse, ...args: unknown[]): boolean {
  queue(this, this[HELD]!, 'write', args);
  return false;
}

function heldEnd(this: HeldResponse, ...args: unknown[]): ServerResponse {
  queue(this, this[HELD]!, 'end', args);
  return this;
}

function heldFlushHeaders(this: HeldResponse): void {
  queue(this, this[HELD]!, 'flushHeaders', []);
}

function queue(res: HeldResponse, hold: Hold, name: HeldMethod, args: unknown[]): void {
  hold.queue.push({ name, args });
  if (hold.started) return;
  hold.started = true;
  // An answer sent whole (res.send) is the argument of its end(); a streamed one is not known yet.
  hold.finish(hold.status ?? res.statusCode, name === 'end' ? args[0] : undefined).then(
    (patch) => release(res, hold, patch),
    (error: unknown) => release(res, hold, errorPatch(error))
  );
}

function release(res: HeldResponse, hold: Hold, patch: ResponsePatch): void {
  const { original, queue } = hold;
  res.writeHead = original.writeHead as ServerResponse['writeHead'];
  res.write = original.write as ServerResponse['write'];
  res.end = original.end as ServerResponse['end'];
  res.flushHeaders = original.flushHeaders as ServerResponse['flushHeaders'];
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
