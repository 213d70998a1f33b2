import { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import type { Config, ModeConfig } from '../../src/config.js';
import {
  LOCAL_AUDIO_FORMATS,
  LOCAL_PART_TYPES,
  newTurnPartOutside,
  newTurnPartWhere,
  refusedAudioFormat,
} from '../../src/content-parts.js';
import { undici } from '../../src/http-client.js';
import { type Lang, type Said, t } from '../../src/i18n.js';
import { takesImages } from '../../src/images.js';
import { onFirstUse } from '../../src/lazy.js';
import type { Logger } from '../../src/logger.js';
import { PROXY_TAG } from '../../src/notices.js';
import { scrubText } from '../../src/redact.js';
import { headChars, shorten } from '../../src/text.js';
import { serverKey } from '../../src/upstream-server.js';
import type {
  Brain,
  BrainError,
  ChatMessage,
  FinishReason,
  Readiness,
  Refusal,
  TurnEvent,
  TurnRequest,
  TurnUsage,
} from '../types.js';
import { jsonBody } from './body.js';
import { DeafModels } from './deaf-models.js';
import { type LlamaHealth, llamaHealthUrl, ollamaHas, probeLlamaHealth } from './health.js';
import { loadOllamaModel, ollamaInMemory, unloadOllamaModel } from './ollama-load.js';
import { PersonaPrompt } from './persona.js';
import { upstreamMessages, upstreamOptions } from './request.js';
import { ShownContent } from './shown-content.js';
import { sseFields } from './sse.js';
import { grammarSafeTools } from './tool-schemas.js';
import {
  contextOverflow,
  MAX_SAID_CHARS,
  parseJson,
  streamChunkSchema,
  upstreamErrorMessage,
} from './upstream.js';

/**
 * Once connected, how long the upstream may stay silent until the answer's
 * first chunk. Generous on purpose: llama-server holds its headers until the
 * prompt is processed, which takes minutes for a long prompt on CPU. Once the
 * answer streams, `llama.streamIdleMs` bounds the silence between chunks.
 */
const SILENCE_TIMEOUT_MS = 10 * 60_000;

/**
 * What a chat is told of an answer cut with finish_reason "length": llama-server stops at the
 * request's max_tokens, its own --n-predict, or the end of the slot's context.
 */
export function localOutputCutNotice(lang: Lang | undefined): string {
  return t(
    lang,
    `${PROXY_TAG} The local model's answer was cut: it reached its output limit (llama-server's --n-predict) or the end of its context (--ctx-size). Ask it to go on, or start a new conversation with /new.`,
    `${PROXY_TAG} La réponse du modèle local a été coupée : il a atteint sa limite de sortie (--n-predict de llama-server) ou la fin de son contexte (--ctx-size). Demandez-lui de continuer, ou commencez une nouvelle conversation avec /new.`,
  );
}

/**
 * What a chat is told of an answer the upstream ended with finish_reason "content_filter" (a server
 * or proxy in front of the model that filters), or the user takes half an answer for all of it.
 */
export function localFilteredNotice(lang: Lang | undefined): string {
  return t(
    lang,
    `${PROXY_TAG} The local model's server stopped this answer with its content filter; the rest of it was withheld. Rephrase the request, or start a new conversation with /new.`,
    `${PROXY_TAG} Le serveur du modèle local a arrêté cette réponse avec son filtre de contenu ; la suite n’a pas été donnée. Reformulez la demande, ou commencez une nouvelle conversation avec /new.`,
  );
}

/**
 * What a server says of images sent to a model that takes none: Ollama's "this model is missing
 * data required for image input", llama-server's "image input is not supported" (no --mmproj).
 */
const NO_IMAGE_INPUT = /missing data required for image input|image input is not supported/i;

/**
 * What llama-server says of an `input_audio` part for a model that hears nothing ("audio input is
 * not supported", no --mmproj of an audio model), with a 500 as for images: the request fails
 * the same way each time it is sent.
 */
const NO_AUDIO_INPUT = /audio input is not supported/i;

/**
 * What Ollama's OpenAI endpoint (openai/openai.go, FromChatRequest) says, with a 400, of a content
 * part other than text and image_url in any message: `input_audio` among them, which it reads in none.
 */
const OLLAMA_BAD_PART = /^invalid message format$/i;

/** Whether a message holds an audio part. */
function holdsAudio(m: ChatMessage): boolean {
  return Array.isArray(m.content) && m.content.some((p) => p.type === 'input_audio');
}

/** Statuses by which the upstream refuses the request as sent (invalid, unknown model, too large, unprocessable). */
const REFUSED_REQUEST = new Set([400, 404, 413, 422]);

/**
 * How long a client is told to wait before sending a request again while the local server loads
 * its model (when the server itself gives no Retry-After; llama-server gives none). A model loads
 * in seconds to a minute: 10 s has the openai SDK's two retries span 20 s, where its own backoff
 * (0.5 s, 1 s) gives up before a model is loaded.
 */
const UNAVAILABLE_RETRY_MS = 10_000;

/** An upstream's Retry-After (seconds, or an HTTP date) in ms; undefined when absent or unreadable. */
function retryAfterOf(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * An audio part of the new turn in a format llama-server refuses (see LOCAL_AUDIO_FORMATS), refused
 * here naming the part and the formats it takes, where llama-server's own words name neither (and
 * older builds say them with a 500, which clients send again). An earlier turn's is told as a line
 * (upstreamMessages).
 */
function audioFormatRefusal(messages: TurnRequest['messages']): Refusal | undefined {
  const found = newTurnPartWhere(messages, (p) => refusedAudioFormat(p) !== undefined);
  if (!found) return undefined;
  const formats = LOCAL_AUDIO_FORMATS.join(' or ');
  const quoted = LOCAL_AUDIO_FORMATS.map((f) => `"${f}"`).join(' or ');
  return {
    param: found.param,
    message: `${found.param}: input_audio format ${refusedAudioFormat(found.part)} is not one llama-server takes: send the audio as ${formats} (input_audio.format ${quoted}), converted first if need be (e.g. ffmpeg -i voice.ogg voice.mp3).`,
  };
}

/**
 * An audio part of the new turn, in any format, to a mode found on Ollama (its readiness probe):
 * its OpenAI endpoint reads audio in no message ("invalid message format"), so converting it to wav
 * or mp3, as a llama-server mode would be told, does not help.
 */
function ollamaAudioRefusal(messages: TurnRequest['messages']): Refusal | undefined {
  const found = newTurnPartWhere(messages, (p) => p.type === 'input_audio');
  if (!found) return undefined;
  return {
    param: found.param,
    message: `${found.param}: Ollama’s OpenAI endpoint reads no audio (input_audio parts), in any format: send what was said as text, or use a llama-server mode whose model hears audio (an audio model with its --mmproj; wav or mp3).`,
  };
}

/** The upstream went silent mid-answer for longer than `llama.streamIdleMs`. */
class StreamIdle extends Error {}

export interface LlamaLocalBrainOptions {
  mode: ModeConfig;
  /** OpenAI-style base URL, e.g. `http://127.0.0.1:8081/v1`. */
  baseUrl: string;
  llama: Config['llama'];
  logger: Logger;
  /** The models that refused audio, shared by the modes of one service (core.ts); a brain made alone keeps its own. */
  deaf?: DeafModels;
}

/**
 * A mode served by an OpenAI-compatible local server (llama-server, Ollama):
 * streams its chat completions as turn events, with think blocks removed, the
 * client's sampling controls passed on and, when the mode has a persona
 * directory, a concise system prompt of its own.
 */
export class LlamaLocalBrain implements Brain {
  readonly kind = 'llama' as const;
  readonly id: string;
  private readonly mode: ModeConfig;
  private readonly llama: Config['llama'];
  private readonly logger: Logger;
  private readonly agent: () => Promise<Agent>;
  private readonly persona: PersonaPrompt | undefined;
  private readonly chatUrl: string;
  private readonly healthUrl: string;
  /** Ollama's model list at the same root, asked when /health is not there (see probeLlamaHealth). */
  private readonly ollamaTagsUrl: string;
  /** The server root as messages show it (Ollama's readiness names the server, not a path). */
  private readonly shownRoot: string;
  /** Ollama's load request (`POST /api/generate` with no prompt, see preload). */
  private readonly ollamaGenerateUrl: string;
  /** Ollama's list of the models in memory (see needsLoad). */
  private readonly ollamaPsUrl: string;
  /**
   * Whether the last probe of the server that got an answer (readiness, or a turn's own: see run)
   * found Ollama (see preload); undefined until one did (brainstem just started, the server was down).
   */
  private onOllama: boolean | undefined;
  /**
   * The same, as messages show them: without credentials a base URL may carry
   * (`http://user:password@host`, `?api_key=`). Readiness is on the public
   * /health, and errors reach whoever sent the turn.
   */
  private readonly shownChatUrl: string;
  private readonly shownHealthUrl: string;
  /**
   * The base URL with /v1 added, when it lacks it: the address llama-server prints at start has
   * none, and its /health (at the root) answers, so the mode shows ready while each turn gets a 404.
   */
  private readonly withV1: string | undefined;
  /** Turns streaming now, and who waits for there to be none (see settled). */
  private running = 0;
  private readonly idle: (() => void)[] = [];
  /** The running turns' own cuts (see cutShort), each aborted with the error its turn ends on. */
  private readonly cuts = new Set<AbortController>();
  /** Schema limits already logged as moved into descriptions (each said once, not on every turn). */
  private readonly movedLimits = new Set<string>();
  private readonly deaf: DeafModels;
  /** This mode's server (serverKey) and the model name its requests send, as DeafModels keys them. */
  private readonly server: string;
  private readonly modelSent: string;

  constructor(opts: LlamaLocalBrainOptions) {
    this.mode = opts.mode;
    this.id = opts.mode.id;
    this.llama = opts.llama;
    this.logger = opts.logger;
    this.deaf = opts.deaf ?? new DeafModels();
    this.server = serverKey(opts.baseUrl);
    this.modelSent = opts.mode.model ?? 'default';
    this.chatUrl = `${opts.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    this.healthUrl = llamaHealthUrl(opts.baseUrl, opts.llama.healthPath);
    this.ollamaTagsUrl = llamaHealthUrl(opts.baseUrl, '/api/tags');
    this.ollamaGenerateUrl = llamaHealthUrl(opts.baseUrl, '/api/generate');
    this.ollamaPsUrl = llamaHealthUrl(opts.baseUrl, '/api/ps');
    this.shownRoot = scrubText(llamaHealthUrl(opts.baseUrl, ''));
    this.shownChatUrl = scrubText(this.chatUrl);
    this.shownHealthUrl = scrubText(this.healthUrl);
    const base = opts.baseUrl.replace(/\/+$/, '');
    this.withV1 = /\/v1$/.test(base) ? undefined : `${scrubText(base)}/v1`;
    this.persona = opts.mode.personaDir ? new PersonaPrompt(opts.mode.personaDir, opts.mode.id) : undefined;
    this.agent = onFirstUse(
      async () =>
        new (await undici()).Agent({
          connectTimeout: opts.llama.connectTimeoutMs,
          headersTimeout: SILENCE_TIMEOUT_MS,
          bodyTimeout: SILENCE_TIMEOUT_MS,
        }),
    );
  }

  async ready(signal?: AbortSignal): Promise<Readiness> {
    const url = this.shownHealthUrl;
    const h = await this.probeServer(signal);
    switch (h.state) {
      case 'loaded':
        return { ok: true, detail: { en: `${url} answers 200`, fr: `${url} répond 200` } };
      case 'ollama':
        return this.ollamaReadiness(h.models);
      case 'loading':
        return {
          ok: false,
          reason: {
            en: `the model is still loading at ${url}${h.said ? ` (${h.said})` : ''}`,
            fr: `le modèle est encore en chargement à ${url}${h.said ? ` (${h.said})` : ''}`,
          },
          kind: 'loading',
        };
      case 'http':
        if (h.status === 404) {
          // No such path: waiting does not make one (a switch would wait llama.readyTimeoutMs for nothing).
          const from = this.addressSetting();
          return {
            ok: false,
            reason: {
              en: `${url} answered HTTP 404${h.said ? `: ${h.said}` : ''}: the server has no ${this.llama.healthPath}. Check ${from}, or set llama.healthPath to a path it answers 200 on once its model is loaded`,
              fr: `${url} a répondu HTTP 404${h.said ? ` : ${h.said}` : ''} : le serveur n’a pas de ${this.llama.healthPath}. Vérifiez ${from}, ou mettez llama.healthPath à un chemin auquel il répond 200 une fois son modèle chargé`,
            },
            final: true,
          };
        }
        return {
          ok: false,
          reason: {
            en: `${url} answered HTTP ${h.status}${h.said ? `: ${h.said}` : ''}`,
            fr: `${url} a répondu HTTP ${h.status}${h.said ? ` : ${h.said}` : ''}`,
          },
        };
      case 'timeout':
        return {
          ok: false,
          reason: {
            en: `${url} did not answer within ${this.llama.connectTimeoutMs} ms`,
            fr: `${url} n’a pas répondu en ${this.llama.connectTimeoutMs} ms`,
          },
          kind: 'unreachable',
        };
      case 'cancelled':
        return { ok: false, reason: { en: 'readiness probe cancelled', fr: 'vérification annulée' } };
      case 'unreachable':
        return {
          ok: false,
          reason: this.unreachable(url, h.error),
          kind: 'unreachable',
          down: NOTHING_THERE.has(codeOf(h.error) ?? ''),
        };
    }
  }

  /** Probes the server (probeLlamaHealth), learning from an answer whether it is Ollama. */
  private async probeServer(signal?: AbortSignal): Promise<LlamaHealth> {
    const h = await probeLlamaHealth(this.healthUrl, {
      timeoutMs: this.llama.connectTimeoutMs,
      signal,
      ollamaTagsUrl: this.ollamaTagsUrl,
    });
    if (h.state === 'ollama') this.onOllama = true;
    else if (h.state === 'loaded' || h.state === 'loading' || h.state === 'http') this.onOllama = false;
    if (h.state === 'loading' || h.state === 'unreachable') this.deaf.restarted(this.server);
    return h;
  }

  /**
   * Ollama is ready for this mode when it has pulled the mode's model: it loads it on the first
   * request naming it (that answer starts late, within the headers' SILENCE_TIMEOUT_MS). A model it
   * lacks, or no model named, is for the owner to fix, so nobody waits for it (final).
   */
  private ollamaReadiness(models: string[]): Readiness {
    const at = this.shownRoot;
    const name = this.mode.model;
    const setting = `modes.${this.id}.model`;
    const has = models.length > 0 ? models.slice(0, 10).join(', ') : undefined;
    if (name !== undefined && ollamaHas(models, name)) {
      return { ok: true, detail: { en: `Ollama at ${at} has ${name}`, fr: `Ollama à ${at} a ${name}` } };
    }
    const pull = (n: string) => `\`ollama pull ${n}\``;
    if (name === undefined) {
      return {
        ok: false,
        reason: {
          en: `Ollama at ${at} answers a model by its name, and ${setting} is not set: set it to one it has (${has ?? `none yet: pull one, ${pull('qwen2.5:7b')}`}; \`ollama list\` names them)`,
          fr: `Ollama à ${at} répond au nom d’un modèle, et ${setting} n’est pas défini : mettez-le à un modèle qu’il a (${has ?? `aucun encore : téléchargez-en un, ${pull('qwen2.5:7b')}`} ; \`ollama list\` les nomme)`,
        },
        final: true,
      };
    }
    return {
      ok: false,
      reason: {
        en: `Ollama at ${at} has no model ${name}: run ${pull(name)} on it, or set ${setting} to one it has (${has ?? 'none yet'})`,
        fr: `Ollama à ${at} n’a pas de modèle ${name} : lancez ${pull(name)} sur sa machine, ou mettez ${setting} à un modèle qu’il a (${has ?? 'aucun encore'})`,
      },
      final: true,
    };
  }

  /**
   * On Ollama, loads the mode's model (loadOllamaModel), so the switch says the mode is awake once
   * it answers at once, not when the first message would find it still loading. llama-server has
   * its model loaded once /health says so: nothing to do. A model Ollama cannot load (too big for
   * its memory, not there any more) fails the switch with its words and what to do.
   */
  async preload(signal: AbortSignal): Promise<Readiness> {
    const name = this.mode.model;
    if (!this.onOllama || name === undefined) return { ok: true };
    const at = this.shownRoot;
    const setting = `modes.${this.id}.model`;
    const r = await loadOllamaModel(this.ollamaGenerateUrl, name, { signal, dispatcher: await this.agent() });
    switch (r.state) {
      case 'loaded':
        return {
          ok: true,
          detail: { en: `Ollama at ${at} loaded ${name}`, fr: `Ollama à ${at} a chargé ${name}` },
        };
      case 'refused': {
        const said = r.said ? `: ${r.said}` : '';
        const fix =
          r.status === 404
            ? { en: `run \`ollama pull ${name}\` on it`, fr: `lancez \`ollama pull ${name}\` sur sa machine` }
            : {
                en: `free memory there (\`ollama ps\` shows the models loaded; \`ollama stop NAME\` unloads one), or set ${setting} to a smaller model`,
                fr: `libérez de la mémoire sur sa machine (\`ollama ps\` montre les modèles chargés ; \`ollama stop NOM\` en décharge un), ou mettez ${setting} à un modèle plus petit`,
              };
        return {
          ok: false,
          reason: {
            en: `Ollama at ${at} could not load ${name} (HTTP ${r.status}${said}): ${fix.en}`,
            fr: `Ollama à ${at} n’a pas pu charger ${name} (HTTP ${r.status}${said}) : ${fix.fr}`,
          },
        };
      }
      case 'strange':
        return {
          ok: false,
          reason: {
            en: `${at}/api/generate did not answer as Ollama loading ${name} does: ${r.text}`,
            fr: `${at}/api/generate n’a pas répondu comme Ollama qui charge ${name} : ${r.text}`,
          },
        };
      case 'cancelled':
        return {
          ok: false,
          reason: {
            en: `Ollama at ${at} was still loading ${name} when the wait ended (llama.readyTimeoutMs, or a stop)`,
            fr: `Ollama à ${at} chargeait encore ${name} quand l’attente a pris fin (llama.readyTimeoutMs, ou un arrêt)`,
          },
        };
      case 'unreachable':
        return { ok: false, reason: this.unreachable(scrubText(this.ollamaGenerateUrl), r.error) };
    }
  }

  /**
   * On Ollama, whether the mode's model is out of memory (its keep_alive ran out, `ollama stop`, a
   * restart of Ollama): the first message would wait the whole load. One Ollama does not say is
   * loaded all the same (a load answers at once for a model in memory). llama-server: never.
   */
  async needsLoad(signal: AbortSignal): Promise<boolean> {
    const name = this.mode.model;
    if (!this.onOllama || name === undefined) return false;
    const inMemory = await ollamaInMemory(this.ollamaPsUrl, {
      timeoutMs: this.llama.connectTimeoutMs,
      signal,
    });
    return inMemory === undefined || !ollamaHas(inMemory, name);
  }

  /**
   * On Ollama, unloads the mode's model (unloadOllamaModel) and answers once `/api/ps` no longer
   * lists it: Ollama would hold its memory for its keep_alive (5 minutes by default) after the last
   * answer, and a model another server starts on the same GPU meanwhile fails to load or runs on the
   * CPU. llama-server: nothing to do (its mode's `stop` commands unload it).
   */
  async unload(signal: AbortSignal, before: () => Promise<void>): Promise<Readiness> {
    const name = this.mode.model;
    if (!this.onOllama || name === undefined) return { ok: true };
    await before();
    const at = this.shownRoot;
    const r = await unloadOllamaModel({ generate: this.ollamaGenerateUrl, ps: this.ollamaPsUrl }, name, {
      signal,
      dispatcher: await this.agent(),
      intervalMs: this.llama.pollIntervalMs,
      probeTimeoutMs: this.llama.connectTimeoutMs,
    });
    const stop = `\`ollama stop ${name}\``;
    switch (r.state) {
      case 'gone':
        return {
          ok: true,
          detail: { en: `Ollama at ${at} unloaded ${name}`, fr: `Ollama à ${at} a déchargé ${name}` },
        };
      case 'unverified':
        return {
          ok: true,
          detail: {
            en: `Ollama at ${at} was asked to unload ${name} (it has no /api/ps to confirm it)`,
            fr: `Ollama à ${at} a reçu la demande de décharger ${name} (il n’a pas d’/api/ps pour le confirmer)`,
          },
        };
      case 'still loaded':
        return {
          ok: false,
          reason: {
            en: `Ollama at ${at} still holds ${name} in memory (\`ollama ps\` shows it; ${stop} unloads it)`,
            fr: `Ollama à ${at} garde encore ${name} en mémoire (\`ollama ps\` le montre ; ${stop} le décharge)`,
          },
        };
      case 'refused': {
        const said = r.said ? `: ${r.said}` : '';
        return {
          ok: false,
          reason: {
            en: `Ollama at ${at} refused to unload ${name} (HTTP ${r.status}${said}); ${stop} unloads it`,
            fr: `Ollama à ${at} a refusé de décharger ${name} (HTTP ${r.status}${said}) ; ${stop} le décharge`,
          },
        };
      }
      case 'unreachable': {
        // Its machine answered that nothing listens there (Ollama stopped or crashed, the usual reason
        // to switch away from it): no model of it holds memory, and a warning that the next model may
        // lack the memory it holds would be wrong. A timeout or no route says nothing of that: warned.
        if (codeOf(r.error) === 'ECONNREFUSED')
          return {
            ok: true,
            detail: {
              en: `nothing answers at Ollama's address ${at} (connection refused): no model of it holds memory`,
              fr: `rien ne répond à l’adresse d’Ollama ${at} (connexion refusée) : aucun de ses modèles n’occupe de mémoire`,
            },
          };
        return { ok: false, reason: this.unreachable(scrubText(this.ollamaGenerateUrl), r.error) };
      }
    }
  }

  /**
   * A part of the new turn no local model's server reads (a `file`…, see LOCAL_PART_TYPES): refused
   * here, naming it, where llama-server's own 400 "unsupported content[].type" names neither the
   * part nor its type. An earlier turn's is told as a line instead (upstreamMessages).
   */
  refuse(req: Pick<TurnRequest, 'messages'>): Refusal | undefined {
    const part = newTurnPartOutside(req.messages, LOCAL_PART_TYPES);
    // Not knowing its server yet, the turn asks it first (run): Ollama's advice is not llama-server's.
    if (!part) return this.onOllama === undefined ? undefined : this.audioRefusal(req.messages);
    const instead =
      part.type === 'file'
        ? 'send the file’s text as a text part (Claude modes read no file part either)'
        : 'send its content as a text part';
    return {
      param: part.param,
      message: `${part.type} parts are not supported by local modes: llama-server reads text, images (image_url) and audio (input_audio); ${instead}.`,
    };
  }

  /** The new turn's audio this mode's server would refuse, by what it is (Ollama or llama-server). */
  private audioRefusal(messages: TurnRequest['messages']): Refusal | undefined {
    return this.onOllama ? ollamaAudioRefusal(messages) : audioFormatRefusal(messages);
  }

  async *turn(req: TurnRequest, signal: AbortSignal): AsyncGenerator<TurnEvent> {
    this.running++;
    const cut = new AbortController();
    this.cuts.add(cut);
    try {
      yield* this.run(req, signal, cut.signal);
    } finally {
      this.cuts.delete(cut);
      this.running--;
      if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  settled(): Promise<void> {
    return this.running === 0 ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  cutShort(why: BrainError): void {
    for (const cut of this.cuts) cut.abort(why);
  }

  private async *run(req: TurnRequest, signal: AbortSignal, cut: AbortSignal): AsyncGenerator<TurnEvent> {
    const started = Date.now();
    /** How a turn that ends on `error` says it: cancelled by its caller, or cut by a swap (cutShort). */
    const ended = (error: BrainError) =>
      signal.aborted ? aborted() : this.fail(cut.aborted ? (cut.reason as BrainError) : error);
    let persona: string | undefined;
    try {
      persona = await this.persona?.build();
    } catch (err) {
      yield this.fail({
        kind: 'internal',
        message: `cannot read the persona files: ${(err as Error).message}`,
        fr: `impossible de lire les fichiers de persona : ${(err as Error).message}`,
      });
      return;
    }
    if (this.onOllama === undefined && req.messages.some(holdsAudio)) {
      // No probe has found the server yet (refuse left the new turn's audio to here): one now tells
      // Ollama, which reads audio in no message, from llama-server, which takes wav and mp3, so that
      // the refusal's advice is the server's and an earlier turn's audio goes to Ollama as lines at
      // once. A probe of the turn's own, the same GET the readiness board's is: what the board last
      // heard may be the failure that left this unknown. Still unknown (no answer), llama-server is assumed.
      await this.probeServer(AbortSignal.any([signal, cut]));
      if (signal.aborted || cut.aborted) {
        yield ended(aborted().error);
        return;
      }
      const refusal = this.audioRefusal(req.messages);
      if (refusal) {
        yield ended({ kind: 'bad_request', status: 400, param: refusal.param, message: refusal.message });
        return;
      }
    }
    const part = newTurnPartWhere(req.messages, (p) => p.type === 'input_audio');
    // False once the server refused audio: earlier turns' audio goes again as lines. Ollama reads
    // audio in no message: lines from the start (its new turn's was refused). A model its server
    // refused audio for before (DeafModels): lines from the first request, unless the new turn holds
    // audio, which goes to the server all the same: the server may hear it since.
    let hears = !this.onOllama && (part !== undefined || !this.deaf.has(this.server, this.modelSent));
    let res: Dispatcher.ResponseData;
    for (;;) {
      const body = this.requestBody(req, persona, hears);
      const sent = yield* this.send(body, signal, cut, ended);
      if (!sent) return;
      res = sent;
      if (res.statusCode === 200) {
        if (body.messages.some(holdsAudio)) this.deaf.heard(this.server, this.modelSent);
        break;
      }
      const text = await res.body.text().catch(() => '');
      const unheard = this.audioRefused(res.statusCode, text, req.messages);
      if (unheard) {
        this.deaf.refused(this.server, this.modelSent);
        // Audio of the new turn is the user's to change; an earlier turn's only ever failed every
        // later message of the conversation (a voice note answered by a mode that hears, then a switch).
        if (!part && hears) {
          this.logger.info({ mode: this.id }, 'the model takes no audio: earlier turns’ audio sent as lines');
          hears = false;
          continue;
        }
        yield ended(
          part
            ? {
                ...unheard,
                param: part.param,
                message: `${part.param}: ${unheard.message}`,
                ...(unheard.fr ? { fr: `${part.param} : ${unheard.fr}` } : {}),
              }
            : unheard,
        );
        return;
      }
      const retryAfterMs = retryAfterOf(res.headers['retry-after']);
      yield ended(this.httpFailure(res.statusCode, text, req.ownToolResults, retryAfterMs));
      return;
    }

    const shown = new ShownContent(this.mode.templateOpensThink);
    const slots = new CallSlots();
    let finishReason: FinishReason | undefined;
    let sawDone = false;
    let usage: TurnUsage | undefined;
    try {
      for await (const field of sseFields(untilIdle(res.body, this.llama.streamIdleMs))) {
        if (field.name === 'error') {
          // Its value is the error object a `data` chunk would carry under "error" (or, from some other
          // server, plain text): said as that chunk would be.
          yield this.fail(
            this.midAnswerFailure({ error: parseJson(field.value) ?? field.value }, req.ownToolResults),
          );
          return;
        }
        const data = field.value;
        if (data === '[DONE]') {
          sawDone = true;
          break;
        }
        const parsed = streamChunkSchema.safeParse(parseJson(data));
        if (!parsed.success) {
          yield this.fail({
            kind: 'upstream_error',
            message: `${this.shownChatUrl} sent a chunk that is not an OpenAI stream chunk: ${headChars(data, 200)}`,
            fr: `${this.shownChatUrl} a envoyé un morceau qui n’est pas un morceau de flux OpenAI : ${headChars(data, 200)}`,
          });
          return;
        }
        const chunk = parsed.data;
        if (chunk.error !== undefined) {
          yield this.fail(this.midAnswerFailure(chunk, req.ownToolResults));
          return;
        }
        for (const choice of chunk.choices ?? []) {
          const { text, logprobs } = shown.push(choice.delta?.content ?? '', choice.logprobs?.content ?? []);
          if (text) yield { type: 'text', text };
          for (const call of choice.delta?.tool_calls ?? []) {
            yield {
              type: 'tool_call',
              index: slots.of(call.index ?? NO_INDEX, call.id),
              ...(call.id ? { id: call.id } : {}),
              ...(call.function?.name ? { name: call.function.name } : {}),
              ...(call.function?.arguments ? { arguments: call.function.arguments } : {}),
            };
          }
          if (logprobs.length > 0) yield { type: 'logprobs', content: logprobs };
          if (choice.finish_reason) finishReason = toFinishReason(choice.finish_reason);
        }
        if (chunk.usage) {
          usage = {
            costUsd: 0,
            inputTokens: chunk.usage.prompt_tokens,
            outputTokens: chunk.usage.completion_tokens,
            cacheReadTokens: 0,
            cacheWriteTokens: 0,
          };
        }
      }
    } catch (err) {
      yield ended({
        kind: 'upstream_error',
        message:
          err instanceof StreamIdle
            ? `the local model at ${this.shownChatUrl} stopped sending mid-answer: nothing for ${this.llama.streamIdleMs} ms (llama.streamIdleMs), so the turn was ended`
            : `the stream from ${this.shownChatUrl} broke: ${describe(err)}`,
        fr:
          err instanceof StreamIdle
            ? `le modèle local à ${this.shownChatUrl} s’est tu en pleine réponse : rien pendant ${this.llama.streamIdleMs} ms (llama.streamIdleMs), le tour a donc été terminé`
            : `le flux de ${this.shownChatUrl} s’est rompu : ${describe(err)}`,
      });
      return;
    }

    if (!sawDone && !finishReason) {
      yield this.fail({
        kind: 'upstream_error',
        message: `the stream from ${this.shownChatUrl} ended before the model finished its answer`,
        fr: `le flux de ${this.shownChatUrl} s’est terminé avant que le modèle ait fini sa réponse`,
      });
      return;
    }
    const rest = shown.flush();
    if (rest.text) yield { type: 'text', text: rest.text };
    if (rest.logprobs.length > 0) yield { type: 'logprobs', content: rest.logprobs };
    // No usage chunk (an Ollama that ignores include_usage): said as not counted, never as 0 tokens.
    yield { type: 'usage', usage: usage ?? { ...UNCOUNTED, tokensUnknown: true } };
    const finish = finishReason ?? 'stop';
    this.logger.info(
      {
        ms: Date.now() - started,
        finish,
        inputTokens: usage?.inputTokens,
        outputTokens: usage?.outputTokens,
      },
      'llama turn done',
    );
    // Cut at the output limit: the text so far is the answer (an OpenAI client reads finish_reason),
    // and a chat is told, or the user takes half an answer for all of it.
    if (finish === 'length') yield { type: 'notice', text: localOutputCutNotice(req.lang) };
    if (finish === 'content_filter') yield { type: 'notice', text: localFilteredNotice(req.lang) };
    yield { type: 'done', finishReason: finish };
  }

  /**
   * Sends the turn's request (requestBody); the response, or undefined once it yielded why there is
   * none (cancelled, no connection).
   */
  private async *send(
    request: Record<string, unknown>,
    signal: AbortSignal,
    cut: AbortSignal,
    ended: (error: BrainError) => TurnEvent,
  ): AsyncGenerator<TurnEvent, Dispatcher.ResponseData | undefined> {
    const body = jsonBody(request);
    if (signal.aborted) {
      yield aborted();
      return undefined;
    }
    try {
      const { request } = await undici();
      return await request(this.chatUrl, {
        method: 'POST',
        dispatcher: await this.agent(),
        signal: AbortSignal.any([signal, cut]),
        headers: {
          'content-type': 'application/json',
          'content-length': String(body.length),
          accept: 'text/event-stream',
        },
        // Object mode: the string slices reach the socket as they are (a byte stream makes each a Buffer).
        body: body.whole ?? Readable.from(body.pieces(), { objectMode: true }),
      });
    } catch (err) {
      yield ended(this.requestFailure(err));
      return undefined;
    }
  }

  /** The request for the turn, its messages as `hears` says (upstreamMessages). */
  private requestBody(
    req: TurnRequest,
    persona: string | undefined,
    hears: boolean,
  ): Record<string, unknown> & { messages: ChatMessage[] } {
    if (this.persona && persona === undefined) {
      this.logger.warn(
        { personaDir: this.mode.personaDir },
        'no persona files found; keeping the client system prompt',
      );
    }
    // The core already cut the client's tools to the mode's toolFilter (and said which it kept back).
    const { tools, moved } = grammarSafeTools(req.tools ?? []);
    const unsaid = moved.filter((m) => !this.movedLimits.has(m));
    if (unsaid.length > 0) {
      for (const m of unsaid) this.movedLimits.add(m);
      this.logger.info(
        { moved: unsaid },
        'tool schema limits llama-server cannot compile into its grammar: said in the descriptions instead',
      );
    }
    return {
      ...upstreamOptions(req.options),
      model: this.modelSent,
      messages: upstreamMessages(req.messages, persona, req.extraContext, takesImages(this.mode), hears),
      stream: true,
      stream_options: { include_usage: true },
      ...(req.maxTokens !== undefined ? { max_tokens: req.maxTokens } : {}),
      ...(tools.length > 0 ? { tools } : {}),
      ...(tools.length > 0 && req.toolChoice !== undefined ? { tool_choice: req.toolChoice } : {}),
    };
  }

  private fail(error: BrainError): { type: 'error'; error: BrainError } {
    this.logger.warn({ error }, 'llama turn failed');
    return { type: 'error', error };
  }

  private requestFailure(err: unknown): BrainError {
    if ((err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT') {
      return {
        kind: 'upstream_error',
        message: `${this.shownChatUrl} accepted the request but sent nothing for ${SILENCE_TIMEOUT_MS / 60_000} minutes`,
        fr: `${this.shownChatUrl} a accepté la requête mais n’a rien envoyé pendant ${SILENCE_TIMEOUT_MS / 60_000} minutes`,
      };
    }
    const why = this.unreachable(this.shownChatUrl, err);
    return { kind: 'upstream_down', message: why.en, fr: why.fr };
  }

  /** A failure the upstream reported after the headers, as an error chunk (`{"error": …}`) says it. */
  private midAnswerFailure(chunk: { error?: unknown }, ownToolResults?: boolean): BrainError {
    const said = upstreamErrorMessage(chunk) ?? shorten(JSON.stringify(chunk.error), MAX_SAID_CHARS);
    return (
      this.overflowFailure(chunk, ownToolResults) ?? {
        kind: 'upstream_error',
        message: `the local model failed mid-answer: ${said}`,
        fr: `le modèle local a échoué en pleine réponse : ${said}`,
      }
    );
  }

  /**
   * The context_overflow an upstream error body says, if it says the prompt outgrew the context. When
   * the prompt ends with the results of tools brainstem ran during this answer, those are what did not
   * fit: a new conversation would ask the same and call the same tools, so it is not offered.
   */
  private overflowFailure(body: unknown, ownToolResults?: boolean): BrainError | undefined {
    const overflow = contextOverflow(body);
    if (!overflow) return undefined;
    const { promptTokens: asked, contextTokens: ctx } = overflow;
    // "exceeds the available context size" is llama-server's own phrase: clients that compact a
    // conversation on an overflow (OpenClaw) look for it.
    const en = `exceeds the available context size of the local model at ${this.shownChatUrl}${ctx ? ` (${ctx} tokens)` : ''}`;
    const fr = `dépasse la taille de contexte du modèle local à ${this.shownChatUrl}${ctx ? ` (${ctx} jetons)` : ''}`;
    if (ownToolResults) {
      return {
        kind: 'context_overflow',
        message: `the results of the tools the model called for this answer did not fit its context: with them the conversation${asked ? ` (${asked} tokens)` : ''} ${en}. Give llama-server a larger --ctx-size, or ask for something narrower (one file, one test, fewer log entries) so that its tools return less; a new conversation would not help, since the same question calls the same tools`,
        fr: `les résultats des outils appelés par le modèle pour cette réponse ne tiennent pas dans son contexte : avec eux, la conversation${asked ? ` (${asked} jetons)` : ''} ${fr}. Donnez à llama-server un --ctx-size plus grand, ou demandez quelque chose de plus ciblé (un fichier, un test, moins d’entrées de journal) pour que ses outils renvoient moins ; une nouvelle conversation n’y changerait rien, la même question appelant les mêmes outils`,
      };
    }
    return {
      kind: 'context_overflow',
      message: `the conversation${asked ? ` (${asked} tokens)` : ''} ${en}: start a new conversation, or give llama-server a larger --ctx-size`,
      fr: `la conversation${asked ? ` (${asked} jetons)` : ''} ${fr} : commencez une nouvelle conversation, ou donnez à llama-server un --ctx-size plus grand`,
    };
  }

  private httpFailure(
    status: number,
    text: string,
    ownToolResults?: boolean,
    retryAfterMs?: number,
  ): BrainError {
    const body = parseJson(text);
    const overflow = this.overflowFailure(body, ownToolResults);
    if (overflow) return overflow;
    const said = upstreamErrorMessage(body) ?? shorten(text.trim(), MAX_SAID_CHARS);
    const detail = said ? `: ${said}` : '';
    if (NO_IMAGE_INPUT.test(said)) return this.imagesRefused(status, detail);
    if (status === 503) {
      // llama-server answers 503 "Loading model" until its model is loaded (at start, after a crash,
      // on a swap behind its back); Ollama when its queue is full. Sent again later, it is answered.
      const loading = /loading/i.test(said);
      return {
        kind: 'unavailable',
        status,
        retryAfterMs: retryAfterMs ?? UNAVAILABLE_RETRY_MS,
        message: loading
          ? `the local model at ${this.shownChatUrl} is still loading (HTTP 503${detail}); try again in a moment`
          : `the local model's server at ${this.shownChatUrl} cannot take the request now (HTTP 503${detail}); try again in a moment`,
        fr: loading
          ? `le modèle local à ${this.shownChatUrl} est encore en chargement (HTTP 503${detail && ` :${detail.slice(1)}`}) ; réessayez dans un instant`
          : `le serveur du modèle local à ${this.shownChatUrl} ne peut pas prendre la requête maintenant (HTTP 503${detail && ` :${detail.slice(1)}`}) ; réessayez dans un instant`,
      };
    }
    let message = `${this.shownChatUrl} answered HTTP ${status}${detail}`;
    let fr = `${this.shownChatUrl} a répondu HTTP ${status}${detail && ` :${detail.slice(1)}`}`;
    if (status === 404 && /\bmodel\b.*\bnot found\b/i.test(said)) {
      // Ollama (and any server that serves models by name) has no model by the name sent: its own
      // words say "try pulling it", but not which setting gave the name, nor that 'default' is none.
      const setting = `modes.${this.id}.model`;
      const name = this.mode.model;
      message += name
        ? `. Pull it on that server (Ollama: \`ollama pull ${name}\`), or set ${setting} to a model it has (\`ollama list\`)`
        : `. ${setting} is not set, so the name sent was "default": set it to a model the server has (Ollama: \`ollama list\`)`;
      fr += name
        ? `. Téléchargez-le sur ce serveur (Ollama : \`ollama pull ${name}\`), ou mettez ${setting} à un modèle qu’il a (\`ollama list\`)`
        : `. ${setting} n’est pas défini, le nom envoyé était donc « default » : mettez-le à un modèle que le serveur a (Ollama : \`ollama list\`)`;
    } else if (status === 404 && this.withV1) {
      const from = this.addressSetting();
      message = `${message.replace(/\.$/, '')}. The OpenAI API of llama-server and Ollama is under /v1: set ${from} to ${this.withV1}`;
      fr = `${fr.replace(/\.$/, '')}. L'API OpenAI de llama-server et d'Ollama est sous /v1 : mettez ${from} à ${this.withV1}`;
    }
    // The request itself is what llama-server refused (a part or schema it cannot take, an orphan tool
    // message): sent again, it fails the same way, so it is the client's error, not a server error
    // clients retry (the openai SDK twice, OpenClaw more).
    if (REFUSED_REQUEST.has(status)) return { kind: 'bad_request', status, message, fr };
    if (status === 429) return { kind: 'rate_limit', status, message, fr, retryAfterMs };
    return { kind: 'upstream_error', status, message, fr };
  }

  /**
   * The server refused the images because its model takes none (a mode with `vision` set to true on
   * a text model). Ollama and llama-server say it with a 500, which clients retry (OpenClaw up to 8
   * times) into the same refusal: it is the request as sent that fails, and the fix is a setting.
   */
  private imagesRefused(status: number, detail: string): BrainError {
    const v = `modes.${this.id}.vision`;
    return {
      kind: 'bad_request',
      status,
      message: `${this.shownChatUrl} answered HTTP ${status}${detail}. The model of mode ${this.id} takes no images: set ${v} to false (brainstem then says so before sending one), or serve a model that sees them (Ollama: a vision model such as llama3.2-vision; llama-server: its --mmproj)`,
      fr: `${this.shownChatUrl} a répondu HTTP ${status}${detail && ` :${detail.slice(1)}`}. Le modèle du mode ${this.id} ne prend pas d’images : mettez ${v} à false (brainstem le dit alors avant d’en envoyer une), ou servez un modèle qui les voit (Ollama : un modèle de vision comme llama3.2-vision ; llama-server : son --mmproj)`,
    };
  }

  /**
   * The server's refusal of audio because its model hears none, as the turn's error; undefined for
   * any other failure. llama-server says it with a 500 ("audio input is not supported", no audio
   * model's --mmproj), which clients send again (the openai SDK twice) into the same refusal; Ollama's
   * OpenAI endpoint reads no audio part in any message and says only "invalid message format" (400),
   * which is the audio when the request holds some. No setting of brainstem changes it, the audio
   * does: sent as text, or to a model that takes it.
   */
  private audioRefused(
    status: number,
    text: string,
    messages: readonly ChatMessage[],
  ): BrainError | undefined {
    const said = upstreamErrorMessage(parseJson(text)) ?? shorten(text.trim(), MAX_SAID_CHARS);
    const ollama = status === 400 && OLLAMA_BAD_PART.test(said) && messages.some(holdsAudio);
    if (!ollama && !NO_AUDIO_INPUT.test(said)) return undefined;
    const detail = said ? `: ${said}` : '';
    const serve = ollama
      ? {
          en: 'Ollama’s OpenAI endpoint reads no audio; llama-server: an audio model with its --mmproj',
          fr: 'le point d’accès OpenAI d’Ollama ne lit pas d’audio ; llama-server : un modèle audio avec son --mmproj',
        }
      : {
          en: 'llama-server: an audio model with its --mmproj',
          fr: 'llama-server : un modèle audio avec son --mmproj',
        };
    return {
      kind: 'bad_request',
      status,
      message: `${this.shownChatUrl} answered HTTP ${status}${detail}. The model of mode ${this.id} takes no audio (input_audio parts): send what was said as text, or serve a model that hears it (${serve.en})`,
      fr: `${this.shownChatUrl} a répondu HTTP ${status}${detail && ` :${detail.slice(1)}`}. Le modèle du mode ${this.id} ne prend pas d’audio (parts input_audio) : envoyez ce qui a été dit en texte, ou servez un modèle qui l’entend (${serve.fr})`,
    };
  }

  /** The one setting that gave this mode's address, so a fix names what to change. */
  private addressSetting(): string {
    return this.mode.baseUrl ? `modes.${this.mode.id}.baseUrl` : 'LLAMA_BASE_URL (llama.baseUrl)';
  }

  private unreachable(url: string, err: unknown): Said {
    const timedOut = (err as { code?: string }).code === 'UND_ERR_CONNECT_TIMEOUT';
    const ms = this.llama.connectTimeoutMs;
    const why = (lang: Lang) =>
      timedOut ? t(lang, `no connection within ${ms} ms`, `pas de connexion en ${ms} ms`) : describe(err);
    const from = this.addressSetting();
    return {
      en:
        `cannot reach the local model at ${url} (${why('en')}). ` +
        `Is llama-server (or Ollama) running? Its address comes from ${from}.`,
      fr:
        `impossible de joindre le modèle local à ${url} (${why('fr')}). ` +
        `llama-server (ou Ollama) tourne-t-il ? Son adresse vient de ${from}.`,
    };
  }
}

/**
 * The body's chunks; once the first has come, a silence longer than `idleMs`
 * ends it with StreamIdle (and closes the connection). The clock runs only
 * while waiting for the upstream, not while the consumer handles a chunk.
 */
async function* untilIdle(body: Dispatcher.ResponseData['body'], idleMs: number): AsyncGenerator<Buffer> {
  let timer: NodeJS.Timeout | undefined;
  try {
    for await (const chunk of body) {
      clearTimeout(timer);
      yield chunk as Buffer;
      timer = setTimeout(() => body.destroy(new StreamIdle()), idleMs);
    }
  } finally {
    clearTimeout(timer);
  }
}

function toFinishReason(upstream: string): FinishReason {
  return upstream === 'tool_calls' || upstream === 'length' || upstream === 'content_filter'
    ? upstream
    : 'stop';
}

/** A local turn's usage when its server counted nothing: free, and no count (tokensUnknown). */
const UNCOUNTED: TurnUsage = {
  costUsd: 0,
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
};

function aborted(): { type: 'error'; error: BrainError } {
  return {
    type: 'error',
    error: { kind: 'aborted', message: 'the turn was cancelled', fr: 'le tour a été annulé' },
  };
}

/** Connecting found nothing at the address: no server listens there, or the name or route does not exist. */
const NOTHING_THERE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);

/** A network error's code; Node's attempts at both IPv4 and IPv6 come as an AggregateError of the two. */
function codeOf(err: unknown): string | undefined {
  const e = err as { code?: string; errors?: unknown[] };
  return e.code ?? (Array.isArray(e.errors) ? codeOf(e.errors[0]) : undefined);
}

/** Node's network errors sometimes have an empty message (AggregateError of IPv4 and IPv6 attempts). */
function describe(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return e.message || e.code || String(err);
}

/**
 * The upstream index of a delta that has none: all such deltas share it, so a new id is a new call
 * and a delta without an id goes on with the last one (CallSlots), as these servers send them.
 */
const NO_INDEX = -1;

/**
 * Which call a tool-call delta belongs to. OpenAI gives each call its own
 * `index` and its id on the first delta; Ollama sends every call at index 0,
 * each with an id of its own. A new id is a new call: calls are numbered here
 * by id, so two calls never merge into one (`file_writefile_write`).
 */
class CallSlots {
  private readonly byId = new Map<string, number>();
  /** The call an upstream index last meant, for deltas that carry no id. */
  private readonly byIndex = new Map<number, number>();
  /** Calls whose id is known. */
  private readonly named = new Set<number>();
  private next = 0;

  of(index: number, id: string | null | undefined): number {
    if (!id) return this.byIndex.get(index) ?? this.fresh(index);
    let slot = this.byId.get(id);
    if (slot === undefined) {
      // An id coming after a first delta without one names that call, not a new one.
      const current = this.byIndex.get(index);
      slot = current !== undefined && !this.named.has(current) ? current : this.fresh(index);
      this.byId.set(id, slot);
      this.named.add(slot);
    }
    this.byIndex.set(index, slot);
    return slot;
  }

  private fresh(index: number): number {
    const slot = this.next++;
    this.byIndex.set(index, slot);
    return slot;
  }
}
