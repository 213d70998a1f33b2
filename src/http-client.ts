import { onFirstUse } from './lazy.js';

/**
 * undici, brainstem's HTTP client for what it calls (llama-server, the Bot API
 * front's passthrough, web_fetch, web_search, Telegram file downloads), loaded
 * on the first such request: it is the bundle's largest library (~750 kB of
 * source), and serving the first request needs none of it.
 *
 *   const { request } = await undici();
 */
export const undici = onFirstUse(() => import('./undici-api.js'));
