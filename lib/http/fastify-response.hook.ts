import { BODY_HEADERS, type ResponsePatch } from './response-patch.js';

interface FastifyReplyLike {
  statusCode: number;
  code(status: number): unknown;
  header(name: string, value: string): unknown;
  removeHeader(name: string): unknown;
}

interface FastifyLike {
  addHook(
    name: 'onSend',
    hook: (request: { raw: object }, reply: FastifyReplyLike, payload: unknown, done: (error: Error | null, payload?: unknown) => void) => void
  ): unknown;
}

/**
 * Fastify's request cannot reach its reply, so the commit runs in one `onSend` hook for the whole
 * app: `pending(raw)` says whether this request's session awaits a commit (most do not, and pass
 * straight through), and the patch goes onto the reply before Fastify writes it.
 */
export function installFastifyHook(instance: FastifyLike, pending: (raw: object) => ((status: number, payload: unknown) => Promise<ResponsePatch>) | undefined): void {
  instance.addHook('onSend', (request, reply, payload, done) => {
    const finish = pending(request.raw);
    if (finish === undefined) return done(null, payload);
    finish(reply.statusCode, payload).then((patch) => {
      if (patch.kind === 'headers') {
        for (const [name, value] of patch.headers) reply.header(name, value);
        return done(null, payload);
      }
      for (const name of BODY_HEADERS) reply.removeHeader(name);
      for (const [name, value] of patch.headers) reply.header(name, value);
      reply.code(patch.status);
      // A stream the app meant to send (a StreamableFile, say) is not read any more: close it.
      (payload as { destroy?: () => void } | null)?.destroy?.();
      done(null, patch.body);
    }, done);
  });
}
