/**
 * The part of undici brainstem calls, re-exported by name: src/http-client.ts
 * imports this on first use. (esbuild turns a dynamic import of the CommonJS
 * package itself into a chunk with a default export only.)
 */
export { Agent, FormData, interceptors, request } from 'undici';
