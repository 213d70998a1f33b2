import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { BrainstemError } from '../../src/errors.js';
import type { Tools } from '../../src/tools/index.js';
import { resultJson } from '../../src/tools/registry.js';
import { afterDelivery, callerGone } from './caller.js';
import { openAiError } from './errors.js';

/**
 * The tools for scripts: `GET /api` lists them with the JSON Schema of their
 * input, `POST /api/<tool>` runs one. A few GET conveniences map onto the same
 * tools. The Bearer token is asked by auth.ts, as on every route not marked public.
 */
export function registerApi(app: FastifyInstance, tools: Tools): void {
  const { registry } = tools;

  const run = async (reply: FastifyReply, name: string, input: unknown) => {
    const r = await registry.call(name, input, { caller: 'api', signal: callerGone(reply) });
    afterDelivery(reply, r.afterDelivery);
    if (!r.error) return reply.send(resultJson(r));
    return reply.status(r.error.status).send({
      ...openAiError({
        message: r.error.message,
        type: r.error.type,
        code: r.error.code,
        param: r.error.param,
      }),
      result: resultJson(r),
    });
  };

  app.get('/api', async () => ({ tools: registry.list(), shortcuts: tools.shortcuts.list() }));

  app.post<{ Params: { tool: string } }>('/api/:tool', (request, reply) =>
    run(reply, request.params.tool, request.body ?? {}),
  );

  app.get('/api/usage', (request, reply) => {
    const q = query(z.object({ since: z.string().optional() }), request.query);
    return run(reply, 'usage', q.since === undefined ? {} : { since: q.since });
  });
  app.get('/api/mode', (_request, reply) => run(reply, 'mode', {}));
  app.get('/api/sessions', (_request, reply) => run(reply, 'sessions', { action: 'list' }));
}

function query<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue?.path.join('.') || undefined;
    throw new BrainstemError('INVALID_REQUEST', `${param ?? 'query'}: ${issue?.message ?? 'invalid'}`, param);
  }
  return parsed.data;
}
