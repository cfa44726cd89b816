import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { SessionLockTimeoutError } from '../ez-session.errors.js';
import { holdNodeResponse } from './node-response.hook.js';
import { errorPatch, NO_PATCH, type ResponsePatch } from './response-patch.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

interface Answer {
  status: number;
  message: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** How long a held answer is watched to see that nothing reaches the client. */
const WATCH_MS = 50;
const TOKEN_PATCH: ResponsePatch = {
  kind: 'headers',
  headers: [
    ['set-cookie', 'ezsession=new.jwt; Max-Age=60; Path=/; HttpOnly; SameSite=Lax'],
    ['x-session-token', 'new.jwt'],
    ['cache-control', 'no-store']
  ]
};

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/**
 * A response the test holds: `finish` records the status it was told and answers with what the test
 * settles `commit` with.
 */
function holding(res: ServerResponse) {
  const commit = deferred<ResponsePatch>();
  const statuses: number[] = [];
  const held = holdNodeResponse(res, (status) => {
    statuses.push(status);
    return commit.promise;
  });
  return { held, commit, statuses };
}

let server: Server;
let handler: Handler;
const serverErrors: unknown[] = [];

/** Sends a GET to the test server (a fresh connection each time) and collects the answer. */
function send(): { answer: Promise<Answer>; responded: () => boolean } {
  let responded = false;
  const answer = new Promise<Answer>((resolve, reject) => {
    const { port } = server.address() as AddressInfo;
    const outgoing = request({ host: '127.0.0.1', port, path: '/', agent: false }, (response) => {
      responded = true;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, message: response.statusMessage!, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
  return { answer, responded: () => responded };
}

/** Serves one request with `serve` and gives its answer. */
async function exchange(serve: Handler): Promise<Answer> {
  handler = serve;
  return send().answer;
}

describe('holdNodeResponse (a real node:http server on 127.0.0.1)', { timeout: 10_000 }, () => {
  before(async () => {
    server = createServer((req, res) => {
      Promise.resolve(handler(req, res)).catch((error: unknown) => {
        serverErrors.push(error);
        if (!res.headersSent) res.writeHead(599);
        res.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });

  after(() => {
    server.closeAllConnections();
    server.close();
    assert.deepEqual(serverErrors, []);
  });

  describe('holding', () => {
    it('holds res.end until finish resolves, then sends the answer', async () => {
      const ended = deferred<ReturnType<typeof holding>>();
      handler = (_, res) => {
        const hold = holding(res);
        res.setHeader('content-type', 'text/plain');
        res.end('hello');
        ended.resolve(hold);
      };
      const { answer, responded } = send();
      const hold = await ended.promise;
      await sleep(WATCH_MS);
      assert.equal(responded(), false, 'the client got an answer before finish resolved');
      hold.commit.resolve(NO_PATCH);
      const { status, body } = await answer;
      assert.equal(status, 200);
      assert.equal(body.toString(), 'hello');
    });

    it('holds an explicit writeHead and the writes after it, in order', async () => {
      const wrote = deferred<ReturnType<typeof holding>>();
      let sentEarly: boolean | undefined;
      handler = (_, res) => {
        const hold = holding(res);
        res.writeHead(201, { 'content-type': 'text/plain' });
        res.write('one,');
        res.write('two,');
        sentEarly = res.headersSent;
        wrote.resolve(hold);
        void hold.commit.promise.then(() => res.end('three'));
      };
      const { answer, responded } = send();
      const hold = await wrote.promise;
      await sleep(WATCH_MS);
      assert.equal(responded(), false);
      assert.equal(sentEarly, false);
      hold.commit.resolve(NO_PATCH);
      const { status, body } = await answer;
      assert.equal(status, 201);
      assert.equal(body.toString(), 'one,two,three');
    });

    it('holds flushHeaders too', async () => {
      const flushed = deferred<ReturnType<typeof holding>>();
      handler = (_, res) => {
        const hold = holding(res);
        res.flushHeaders();
        flushed.resolve(hold);
        void hold.commit.promise.then(() => res.end('late'));
      };
      const { answer, responded } = send();
      const hold = await flushed.promise;
      await sleep(WATCH_MS);
      assert.equal(responded(), false);
      hold.commit.resolve(TOKEN_PATCH);
      const { headers, body } = await answer;
      assert.equal(headers['x-session-token'], 'new.jwt');
      assert.equal(body.toString(), 'late');
    });

    it('runs finish once, at the first writeHead / write / end, with the status given to writeHead', async () => {
      let statuses: number[] = [];
      await exchange((_, res) => {
        const hold = holding(res);
        statuses = hold.statuses;
        res.writeHead(404);
        res.write('not ');
        res.end('found');
        hold.commit.resolve(NO_PATCH);
      });
      assert.deepEqual(statuses, [404]);
    });

    it("tells finish the response's statusCode when there is no writeHead", async () => {
      let statuses: number[] = [];
      const { status } = await exchange((_, res) => {
        const hold = holding(res);
        statuses = hold.statuses;
        res.statusCode = 418;
        res.end();
        hold.commit.resolve(NO_PATCH);
      });
      assert.deepEqual(statuses, [418]);
      assert.equal(status, 418);
    });

    it('sends writes made after the release straight through', async () => {
      const { body } = await exchange(async (_, res) => {
        const hold = holding(res);
        res.write('held,');
        hold.commit.resolve(NO_PATCH);
        await sleep(5);
        assert.equal(res.headersSent, true);
        res.write('direct,');
        res.end('end');
      });
      assert.equal(body.toString(), 'held,direct,end');
    });

    it('refuses to hold a response whose headers were sent, and leaves it alone', async () => {
      let held: boolean | undefined;
      let finishCalls = 0;
      const { status, body } = await exchange((_, res) => {
        res.writeHead(202);
        res.write('sent,');
        held = holdNodeResponse(res, async () => {
          finishCalls++;
          return TOKEN_PATCH;
        });
        res.end('still sent');
      });
      assert.equal(held, false);
      assert.equal(finishCalls, 0);
      assert.equal(status, 202);
      assert.equal(body.toString(), 'sent,still sent');
    });

    it('holds a response once: a second hold says yes and its finish is never run', async () => {
      let second: boolean | undefined;
      let secondCalls = 0;
      const { headers } = await exchange((_, res) => {
        const hold = holding(res);
        second = holdNodeResponse(res, async () => {
          secondCalls++;
          return NO_PATCH;
        });
        res.end('x');
        hold.commit.resolve(TOKEN_PATCH);
      });
      assert.equal(second, true);
      assert.equal(secondCalls, 0);
      assert.equal(headers['x-session-token'], 'new.jwt');
    });
  });

  describe('a headers patch', () => {
    it("adds the token headers, appending Set-Cookie to the app's cookies and replacing Cache-Control", async () => {
      const { headers } = await exchange((_, res) => {
        const hold = holding(res);
        res.setHeader('set-cookie', ['theme=dark; Path=/', 'lang=en; Path=/']);
        res.setHeader('cache-control', 'public, max-age=600');
        res.end('x');
        hold.commit.resolve(TOKEN_PATCH);
      });
      assert.deepEqual(headers['set-cookie'], ['theme=dark; Path=/', 'lang=en; Path=/', 'ezsession=new.jwt; Max-Age=60; Path=/; HttpOnly; SameSite=Lax']);
      assert.equal(headers['x-session-token'], 'new.jwt');
      assert.equal(headers['cache-control'], 'no-store');
    });

    it("keeps the headers of a held writeHead(status, headers) without them overriding the patch's, both cookies present", async () => {
      const { status, headers } = await exchange((_, res) => {
        const hold = holding(res);
        res.writeHead(201, { 'Set-Cookie': 'app=1; Path=/', 'Cache-Control': 'public, max-age=60', 'X-App': 'kept', 'Content-Type': 'text/plain' });
        res.end('created');
        hold.commit.resolve(TOKEN_PATCH);
      });
      assert.equal(status, 201);
      assert.deepEqual(headers['set-cookie'], ['app=1; Path=/', 'ezsession=new.jwt; Max-Age=60; Path=/; HttpOnly; SameSite=Lax']);
      assert.equal(headers['cache-control'], 'no-store');
      assert.equal(headers['x-app'], 'kept');
      assert.equal(headers['content-type'], 'text/plain');
    });

    it('keeps the status message and the headers of writeHead(status, message, headers)', async () => {
      const { status, message, headers } = await exchange((_, res) => {
        const hold = holding(res);
        res.writeHead(202, 'Queued For Later', { 'set-cookie': ['a=1', 'b=2'] });
        res.end();
        hold.commit.resolve(TOKEN_PATCH);
      });
      assert.equal(status, 202);
      assert.equal(message, 'Queued For Later');
      assert.deepEqual(headers['set-cookie'], ['a=1', 'b=2', 'ezsession=new.jwt; Max-Age=60; Path=/; HttpOnly; SameSite=Lax']);
    });

    it('keeps the headers of writeHead given as a flat [name, value, …] list', async () => {
      const { headers } = await exchange((_, res) => {
        const hold = holding(res);
        res.writeHead(200, ['Set-Cookie', 'app=1', 'X-App', 'kept']);
        res.end();
        hold.commit.resolve(TOKEN_PATCH);
      });
      assert.deepEqual(headers['set-cookie'], ['app=1', 'ezsession=new.jwt; Max-Age=60; Path=/; HttpOnly; SameSite=Lax']);
      assert.equal(headers['x-app'], 'kept');
    });
  });

  describe('an error patch', () => {
    const LOCK_TIMEOUT = errorPatch(new SessionLockTimeoutError(2));

    it("replaces the status, the body and the body's headers", async () => {
      const { status, headers, body } = await exchange((_, res) => {
        const hold = holding(res);
        res.writeHead(200, { 'content-type': 'text/html', etag: '"v1"', 'last-modified': 'Tue, 01 Dec 2026 10:00:00 GMT', 'content-disposition': 'attachment; filename="a.html"' });
        res.end('<p>the app answer</p>');
        hold.commit.resolve(LOCK_TIMEOUT);
      });
      assert.equal(status, 503);
      assert.equal(body.toString(), LOCK_TIMEOUT.kind === 'error' ? LOCK_TIMEOUT.body : '');
      assert.equal(headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(headers['content-length'], String(body.length));
      assert.equal(headers['retry-after'], '2');
      assert.equal(headers['cache-control'], 'no-store');
      for (const name of ['etag', 'last-modified', 'content-disposition']) assert.equal(headers[name], undefined, name);
    });

    it('drops a redirect the app had set', async () => {
      const { status, headers } = await exchange((_, res) => {
        const hold = holding(res);
        res.statusCode = 302;
        res.setHeader('location', '/elsewhere');
        res.end();
        hold.commit.resolve(LOCK_TIMEOUT);
      });
      assert.equal(status, 503);
      assert.equal(headers.location, undefined);
    });

    it('keeps headers that do not describe the body', async () => {
      const { headers } = await exchange((_, res) => {
        const hold = holding(res);
        res.setHeader('x-request-id', 'r-1');
        res.end('x');
        hold.commit.resolve(LOCK_TIMEOUT);
      });
      assert.equal(headers['x-request-id'], 'r-1');
    });

    it('answers a plain 500 when finish itself rejects', async () => {
      const { status, body } = await exchange((_, res) => {
        const hold = holding(res);
        res.end('x');
        hold.commit.reject(new Error('not an HttpException'));
      });
      assert.equal(status, 500);
      assert.equal(body.toString(), '{"statusCode":500,"message":"Internal server error"}');
    });

    it('drops what the app writes after it, without an error, and still calls its end callback', async () => {
      let endCallback = false;
      let finished = false;
      const { status, body } = await exchange(async (_, res) => {
        const hold = holding(res);
        res.on('finish', () => (finished = true));
        res.write('streamed before,');
        hold.commit.resolve(LOCK_TIMEOUT);
        await sleep(5);
        res.write('streamed after,');
        res.end('the end', () => (endCallback = true));
        res.end();
      });
      assert.equal(status, 503);
      assert.equal(body.toString(), LOCK_TIMEOUT.kind === 'error' ? LOCK_TIMEOUT.body : '');
      await sleep(5);
      assert.equal(endCallback, true);
      assert.equal(finished, true);
    });

    it("lets a writer that waits for 'drain' after a held write go on, its writes dropped", async () => {
      const handlerDone = deferred<string>();
      const { status } = await exchange(async (_, res) => {
        const hold = holding(res);
        if (!res.write('chunk 1,')) {
          hold.commit.resolve(LOCK_TIMEOUT);
          await once(res, 'drain');
        }
        res.write('chunk 2,');
        res.end('last');
        handlerDone.resolve('wrote everything');
      });
      assert.equal(status, 503);
      assert.equal(await Promise.race([handlerDone.promise, sleep(WATCH_MS, 'still waiting for drain')]), 'wrote everything');
    });

    it('calls the callbacks of the writes it drops, held or later', async () => {
      const called: string[] = [];
      await exchange(async (_, res) => {
        const hold = holding(res);
        res.write('held', () => called.push('held write'));
        hold.commit.resolve(LOCK_TIMEOUT);
        await sleep(5);
        res.write('later', () => called.push('later write'));
        res.end();
      });
      await sleep(WATCH_MS);
      assert.deepEqual(called.sort(), ['held write', 'later write']);
    });
  });

  describe('streams', () => {
    const STREAMS: Array<[what: string, chunks: Buffer[]]> = [
      // The held write answers false: the pipe waits for a 'drain' the release must give, as the replayed small write will not.
      ['small chunks', Array.from({ length: 200 }, (_, i) => Buffer.alloc(100, 65 + (i % 26)))],
      // Over the socket's buffer: the replayed writes answer false themselves and Node's own 'drain' follows.
      ['large chunks', Array.from({ length: 8 }, (_, i) => Buffer.alloc(128 * 1024, 65 + i))]
    ];
    for (const [what, chunks] of STREAMS) {
      it(`delivers a piped Readable of ${what} intact once the hold is released`, async () => {
        const expected = Buffer.concat(chunks);
        let release: (() => void) | undefined;
        const answer = exchange((_, res) => {
          const hold = holding(res);
          res.setHeader('content-type', 'application/octet-stream');
          Readable.from(chunks).pipe(res);
          release = () => hold.commit.resolve(TOKEN_PATCH);
        });
        // Long enough for the pipe to stop and wait for 'drain'.
        await sleep(WATCH_MS);
        release!();
        const { status, headers, body } = await answer;
        assert.equal(status, 200);
        assert.equal(headers['x-session-token'], 'new.jwt');
        assert.equal(body.length, expected.length);
        assert.ok(body.equals(expected), 'the body differs from what was piped');
      });
    }
  });
});
