import { onFirstUse } from './lazy.js';

/**
 * undici, brainstem's HTTP client for what it calls (llama-server, the Bot API
 * front's passthrough, web_fetch, web_search, Telegram file downloads, the
 * speech-to-text service), loaded on the first such request: it is the
 * bundle's largest library (~750 kB of source), and serving the first request
 * needs none of it.
 *
 * Loaded, it also becomes the process's `fetch`, `Request`, `Response` and
 * `Headers` (undici's own `install()`). Node ships a second copy of undici
 * behind those globals, which loads whole on their first use, with its own
 * WebAssembly HTTP parser: the MCP SDK's transport builds its requests and
 * answers from them (handlers/http/mcp.ts loads this first). One copy
 * instead of two: 1 to 2 MB less resident once both brains have been used.
 *
 *   const { request } = await undici();
 */
export const undici = onFirstUse(async () => {
  const api = await import('./undici-api.js');
  api.install();
  return api;
});
