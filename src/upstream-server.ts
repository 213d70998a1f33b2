/**
 * Which server a llama mode's base URL (`modes.<id>.baseUrl`, else `llama.baseUrl`) points at, for the
 * questions "is this the same server?" a switch asks (is the target on the Ollama it leaves, on the
 * llama-server whose model it would stop) and doctor asks (one probe per server). Compared as written,
 * one server written two ways (`http://localhost:11434`, `http://127.0.0.1:11434/`,
 * `http://127.0.0.1:11434/v1`) counted as two: a switch between two models of one Ollama sent it an
 * unload, and a switch to a mode on the loaded llama-server's own address stopped that server.
 */

/**
 * Host names that reach this machine's loopback. `localhost` resolves to loopback only (RFC 6761),
 * and Node connects it to `::1` or `127.0.0.1`, whichever answers: a server reached at
 * `localhost:11434` is the one at those addresses, as two different servers on `127.0.0.1:P` and
 * `[::1]:P` would leave `localhost:P` itself meaning either (a setup nobody makes; Ollama and
 * llama-server listen on 127.0.0.1 by default). `0.0.0.0` and `::` as a destination are this host
 * too, and a server listening there answers on loopback. Other 127.x.y.z addresses stay apart: a
 * server can listen on 127.0.0.2 alone. Names are not resolved: another name for this machine (its
 * LAN address) counts as another server, which costs at most an unload Ollama did not need.
 */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '0.0.0.0', '[::]']);

/**
 * One key per server: scheme, host (lower case, which URL does; see hostOf; loopback names as one),
 * port (the scheme's default written out), and the path with its doubled slashes as one, without
 * trailing slashes or the `/v1` the OpenAI-compatible API adds (the server's root, as
 * llamaHealthUrl takes it). Credentials, a query or a fragment name no other server. A path left (a
 * reverse proxy's `/ollama-a`) keeps two servers behind one host apart. A URL that does not parse
 * (config validates them) is its own key.
 */
export function serverKey(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    return baseUrl;
  }
  const named = hostOf(url.hostname);
  const host = LOOPBACK.has(named) ? 'loopback' : named;
  const port = url.port || (url.protocol === 'https:' ? '443' : url.protocol === 'http:' ? '80' : '');
  const root = url.pathname
    .replace(/\/{2,}/g, '/')
    .replace(/\/+$/, '')
    .replace(/\/v1$/, '');
  return `${url.protocol}//${host}:${port}${root}`;
}

/**
 * The host a connection to `hostname` (as URL writes it) reaches, written one way: a name without
 * its root's dot (`localhost.` is DNS's fully qualified `localhost`), and an IPv4 address mapped
 * into IPv6 (`[::ffff:127.0.0.1]`, which URL writes `[::ffff:7f00:1]`) as that IPv4 address, which
 * a connection to it reaches.
 */
function hostOf(hostname: string): string {
  const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(hostname);
  if (mapped) {
    const [high, low] = [Number.parseInt(mapped[1] ?? '', 16), Number.parseInt(mapped[2] ?? '', 16)];
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  }
  return hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
}

/**
 * One key per Ollama model, however a mode names it, for the questions a switch asks of the models of
 * one Ollama (which modes' answers stream from the model it unloads, which other modes' models it
 * unloads too) and readiness asks of its lists (pulled, in memory). Ollama names a model
 * `[host/][namespace/]model[:tag]`: no tag means `:latest`, no host `registry.ollama.ai`, no namespace
 * `library`, and it compares names without case (`Qwen2.5`, `qwen2.5:latest` and
 * `registry.ollama.ai/library/qwen2.5` are one model, which its `/api/ps` lists as `qwen2.5:latest`).
 * Compared as written, a switch from a mode naming `qwen2.5` cut the answer another mode naming
 * `qwen2.5:latest` was streaming from that very model, unloading it under it. A tag is what follows the
 * last ':' after the last '/', so a registry's port (`host:5000/ns/m`) is not one.
 */
export function ollamaModelKey(name: string): string {
  // Read from the right, as Ollama's own parser (types/model/name.go, ParseNameBare) reads it.
  const parts = name.trim().toLowerCase().split('/');
  const last = parts.pop() ?? '';
  const model = last.includes(':') ? last : `${last}:latest`;
  const namespace = parts.pop() ?? 'library';
  const host = parts.length > 0 ? parts.join('/') : 'registry.ollama.ai';
  return `${host}/${namespace}/${model}`;
}
