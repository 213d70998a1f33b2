import { z } from 'zod';
import { BrainstemError } from '../errors.js';
import { undici } from '../http-client.js';
import { onFirstUse } from '../lazy.js';
import type { ToolsConfig } from './config.js';
import { runDelegate } from './delegate.js';
import type { Runner } from './exec.js';
import { type AnyTool, defineTool } from './registry.js';

/** The DOM library (for the snippets' HTML): loaded by the first search, not at start-up. */
const domLibrary = onFirstUse(() => import('linkedom'));

/** web_search through the Brave Search API: results as title, url and snippet. */

const braveResponse = z.object({
  web: z
    .object({
      results: z.array(
        z.object({ title: z.string(), url: z.string(), description: z.string().optional() }).loose(),
      ),
    })
    .loose()
    .optional(),
});

export function webSearchTool(cfg: ToolsConfig['webSearch'], run: Runner): AnyTool {
  return defineTool({
    name: 'web_search',
    description: 'Searches the web (Brave Search) and returns up to 20 results: title, url, snippet.',
    authorize: () => {
      if (!cfg.apiKey && !cfg.delegate) {
        // No colon after "key": the scrubber (src/redact.ts) reads `key: …` as a credential header,
        // and the audit row and log kept "API key: [redacted]" instead of what to set.
        throw new BrainstemError(
          'TOOL_NOT_CONFIGURED',
          'web_search needs a Brave Search API key; set BRAVE_API_KEY (or tools.webSearch.apiKey in brainstem.json).',
          undefined,
          'web_search a besoin d’une clé d’API Brave Search : réglez BRAVE_API_KEY (ou tools.webSearch.apiKey dans brainstem.json).',
        );
      }
    },
    run: async (input, ctx) => {
      const url = new URL(`${cfg.baseUrl.replace(/\/$/, '')}/web/search`);
      url.searchParams.set('q', input.query);
      url.searchParams.set('count', String(input.count));
      const body = cfg.delegate
        ? await delegated(cfg.delegate, url.href, run, ctx.signal, cfg.timeoutMs)
        : await direct(url, cfg, ctx.signal);
      const parsed = braveResponse.safeParse(body);
      if (!parsed.success) {
        throw new BrainstemError(
          'TOOL_FAILED',
          'Brave Search answered with something that is not a result list.',
          undefined,
          'Brave Search a répondu autre chose qu’une liste de résultats.',
        );
      }
      const { parseHTML } = await domLibrary();
      const plain = (html: string) =>
        parseHTML(`<html><body>${html}</body></html>`).document.body.textContent?.trim() ?? '';
      const results = (parsed.data.web?.results ?? []).slice(0, input.count).map((r) => ({
        title: plain(r.title),
        url: r.url,
        snippet: plain(r.description ?? ''),
      }));
      return { data: { query: input.query, results } };
    },
  });
}

async function direct(url: URL, cfg: ToolsConfig['webSearch'], callerSignal: AbortSignal): Promise<unknown> {
  const timeout = AbortSignal.timeout(cfg.timeoutMs);
  try {
    const { request } = await undici();
    const res = await request(url, {
      method: 'GET',
      signal: AbortSignal.any([callerSignal, timeout]),
      headers: {
        accept: 'application/json',
        'x-subscription-token': cfg.apiKey ?? '',
      },
    });
    if (res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 422) {
      await res.body.dump();
      throw new BrainstemError(
        'TOOL_FAILED',
        `Brave Search refused the API key (HTTP ${res.statusCode}); check BRAVE_API_KEY.`,
        undefined,
        `Brave Search a refusé la clé d’API (HTTP ${res.statusCode}) ; vérifiez BRAVE_API_KEY.`,
      );
    }
    if (res.statusCode === 429) {
      await res.body.dump();
      throw new BrainstemError(
        'TOOL_FAILED',
        'Brave Search rate limit reached (HTTP 429); try again later.',
        undefined,
        'Limite de débit de Brave Search atteinte (HTTP 429) ; réessayez plus tard.',
      );
    }
    if (res.statusCode >= 400) {
      await res.body.dump();
      throw new BrainstemError(
        'TOOL_FAILED',
        `Brave Search answered HTTP ${res.statusCode}.`,
        undefined,
        `Brave Search a répondu HTTP ${res.statusCode}.`,
      );
    }
    const type = String(res.headers['content-type'] ?? 'no Content-Type').split(';')[0];
    const text = await res.body.text();
    try {
      return JSON.parse(text);
    } catch {
      // Not "could not be reached": something answered, a proxy's or a captive portal's page, another service.
      throw new BrainstemError(
        'TOOL_FAILED',
        `Brave Search answered with something that is not JSON (${type}); check tools.webSearch.baseUrl.`,
        undefined,
        `Brave Search a répondu autre chose que du JSON (${type}) ; vérifiez tools.webSearch.baseUrl.`,
      );
    }
  } catch (err) {
    if (err instanceof BrainstemError) throw err;
    if (timeout.aborted) {
      throw new BrainstemError(
        'TOOL_TIMEOUT',
        `Brave Search did not answer within ${cfg.timeoutMs / 1000} s.`,
        undefined,
        `Brave Search n’a pas répondu en ${cfg.timeoutMs / 1000} s.`,
      );
    }
    if (callerSignal.aborted) throw new BrainstemError('TOOL_ABORTED');
    const why = (err as Error).message;
    throw new BrainstemError(
      'TOOL_FAILED',
      `Brave Search could not be reached: ${why}`,
      undefined,
      `Brave Search est injoignable : ${why}`,
    );
  }
}

async function delegated(
  prefix: string[],
  url: string,
  run: Runner,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<unknown> {
  const r = await runDelegate('web_search', prefix, url, run, signal, timeoutMs, 'tools.webSearch.timeoutMs');
  try {
    return JSON.parse(r.output);
  } catch {
    throw new BrainstemError('TOOL_FAILED', 'The web_search delegate did not print JSON.');
  }
}
