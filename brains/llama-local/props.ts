import { z } from 'zod';
import { getText } from './health.js';
import { parseJson } from './upstream.js';

/**
 * llama-server's `GET /props` (at the server root): its settings, among them
 * the context of one slot (`--ctx-size` divided by `--parallel`), which is
 * what one conversation gets. Ollama has no such route.
 */
const propsSchema = z.object({
  default_generation_settings: z.object({ n_ctx: z.number().int().positive() }),
});

/** The answer carries the chat template, which can run to tens of kilobytes. */
const MAX_PROPS_CHARS = 1024 * 1024;

/** The context in tokens a conversation gets on the llama-server at `baseUrl` (…/v1), if it says. */
export async function llamaContextTokens(baseUrl: string, timeoutMs: number): Promise<number | undefined> {
  const url = `${baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '')}/props`;
  try {
    const res = await getText(url, AbortSignal.timeout(timeoutMs), MAX_PROPS_CHARS);
    if (res.status !== 200) return undefined;
    const props = propsSchema.safeParse(parseJson(res.text));
    return props.success ? props.data.default_generation_settings.n_ctx : undefined;
  } catch {
    return undefined;
  }
}
