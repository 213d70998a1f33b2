import type { ConfigFile } from '../../src/config.js';
import { type FakeLlama, loadingCommand, startFakeLlama } from '../fakes/llama.js';
import { type Harness, startHarness } from '../telegram-harness.js';

/** Local brains on one GPU, as the bot serves them: an Ollama and a llama-server, both fakes. */
export interface OllamaBesideLlamaServer {
  h: Harness;
  /** The fake Ollama, its mode `ollama` the default. */
  ollama: FakeLlama;
  /** The fake llama-server, loading until mode `local`'s start command runs (the GPU was Ollama's). */
  server: FakeLlama;
  /** Stops the service, then both fakes. */
  close(): Promise<void>;
}

export interface OllamaBesideLlamaServerOptions {
  /** The models Ollama has pulled; default `qwen2.5:7b`. */
  pulled?: string[];
  /** The model mode `ollama` names; default `qwen2.5:7b`. */
  model?: string;
  /** Modes listed between `ollama` and `local` (more modes on the same Ollama). */
  moreModes?: (ollama: FakeLlama) => NonNullable<ConfigFile['modes']>;
  /** llama.readyTimeoutMs, which bounds a switch's wait for an unload too; default 600 s. */
  readyTimeoutMs?: number;
  server?: ConfigFile['server'];
}

/**
 * An owner with an Ollama mode (`ollama`, the active one at start) and a llama-server mode (`local`,
 * model `qwen`, started and stopped by its commands), each on a server of its own.
 */
export async function startOllamaBesideLlamaServer(
  opts: OllamaBesideLlamaServerOptions = {},
): Promise<OllamaBesideLlamaServer> {
  const ollama = await startFakeLlama({ ollama: { models: opts.pulled ?? ['qwen2.5:7b'] } });
  const server = await startFakeLlama({ loading: true });
  const h = await startHarness({
    llama: server,
    config: {
      defaultMode: 'ollama',
      ...(opts.server ? { server: opts.server } : {}),
      modes: {
        ollama: {
          kind: 'llama',
          baseUrl: ollama.baseUrl,
          model: opts.model ?? 'qwen2.5:7b',
          description: 'Qwen on Ollama',
        },
        ...opts.moreModes?.(ollama),
        local: { kind: 'llama', llamaModel: 'qwen', description: 'Qwen on llama-server' },
      },
      llama: {
        readyTimeoutMs: opts.readyTimeoutMs ?? 600_000,
        models: { qwen: { start: [loadingCommand(server, false)], stop: [loadingCommand(server, true)] } },
      },
    },
  });
  return {
    h,
    ollama,
    server,
    close: async () => {
      await h.close();
      await ollama.close();
      await server.close();
    },
  };
}
