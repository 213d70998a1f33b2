import type { FakeLlama } from '../fakes/llama.js';

/**
 * A model's start command that launches llama-server itself (not a unit), on the fake's port: it
 * fails as llama-server does when that port is taken, the model already up there; otherwise the
 * fake comes up (loads, as loadingCommand(fake, false) makes it).
 */
export function llamaServerLaunchCommand(fake: Pick<FakeLlama, 'url'>): string[] {
  const script = `fetch(${JSON.stringify(`${fake.url}/health`)}).then((r) => {
      if (r.status === 200) { console.error("couldn't bind HTTP server socket, port 8081: Address already in use"); process.exit(1); }
      return fetch(${JSON.stringify(`${fake.url}/_fake/loading`)}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"loading":false}' }).then(() => process.exit(0));
    }, () => process.exit(1))`;
  return [process.execPath, '-e', script];
}
