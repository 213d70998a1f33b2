import { onFirstUse } from './lazy.js';

/**
 * undici, brainstem's HTTP client for what it calls (llama-server, the Bot API
 * front's passthrough, web_fetch, web_search, Telegram file downloads, the
 * speech-to-text service), loaded on the first such request: it is the
 * bundle's largest library (~750 kB of source), and serving the first request
 * needs none of it.
 *
 * Node ships a second copy of undici behind the globals `fetch`, `Request`,
 * `Response` and `Headers`, which loads whole on their first use, with its own
 * WebAssembly HTTP parser: brainstem calls this one by name and never those
 * (test/bundle.test.ts checks that Node's copy stays unloaded).
 *
 *   const { request } = await undici();
 */
export const undici = onFirstUse(() => import('./undici-api.js'));
