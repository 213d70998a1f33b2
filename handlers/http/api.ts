import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { BrainstemError } from '../../src/errors.js';
import type { Tools } from '../../src/tools/index.js';
import { resultJson } from '../../src/tools/registry.js';
import { afterDelivery, callerGone } from './caller.js';
import { openAiError } from './errors.js';
import { queryOf } from './query.js';

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
    // As the OpenAI endpoint says it (errors.ts): a brain_chat on a loading model, at a limit, during a
    // stop; and not to be sent again (a refused Claude login, a turn cut at its time limit).
    if (r.error.retryAfterS !== undefined) reply.header('retry-after', String(r.error.retryAfterS));
    if (r.error.noRetry) reply.header('x-should-retry', 'false');
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

  app.get('/api', async (request) => {
    queryOf(z.strictObject({}), request.query);
    return { tools: registry.list(), shortcuts: tools.shortcuts.list() };
  });

  app.post<{ Params: { tool: string } }>('/api/:tool', (request, reply) => {
    // The input is the body: `?max=1` left unread would run the tool with its defaults without a word.
    const [param] = Object.keys(request.query as object);
    if (param !== undefined) {
      throw new BrainstemError(
        'INVALID_REQUEST',
        `${param}: POST /api/${request.params.tool} takes its input as the JSON body ({"${param}": …}), not in the query string.`,
        param,
      );
    }
    return run(reply, request.params.tool, request.body ?? {});
  });

  // The query is the tool's input, strict as the POST body is: a parameter a route does not take is
  // refused by name, never ignored (GET /api/sessions?mode=x must not list every mode's).
  app.get('/api/usage', (request, reply) =>
    run(reply, 'usage', queryOf(z.strictObject({ since: z.string().optional() }), request.query)),
  );
  app.get('/api/mode', (request, reply) => run(reply, 'mode', queryOf(z.strictObject({}), request.query)));
  app.get('/api/sessions', (request, reply) => {
    const filter = z.strictObject({ mode: z.string().optional(), sessionKey: z.string().optional() });
    return run(reply, 'sessions', { action: 'list', ...queryOf(filter, request.query) });
  });
}
