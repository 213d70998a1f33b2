import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import type { Brain } from '../brains/types.js';
import type { Config, ModeConfig } from './config.js';
import type { KvStore } from './db/index.js';
import { isBusy, type KeptWrites } from './db/kept-writes.js';
import { Html, html } from './html.js';
import { formatDuration, type Lang, noticeLang, type Said, saidIn, t, untranslated } from './i18n.js';
import { type SwapOptions, swapLlamaModel } from './llama-swap.js';
import type { Logger } from './logger.js';
import type { ModeRegistry } from './modes.js';
import type { Notifier } from './notices.js';
import { type ReadinessBoard, waitUntilReady } from './readiness.js';
import { scrubText } from './redact.js';
import type { SwitchEnds } from './switch-ends.js';
import { configuredSecrets } from './tools/exec.js';
import { ollamaModelKey, serverKey } from './upstream-server.js';
import { waitAtMost } from './wait.js';

const SOURCES = ['command', 'keyboard', 'intent', 'marker', 'api', 'fallback', 'tool', 'resume'] as const;
/** What asked for a switch; `resume` is brainstem finishing, at start-up, one that a restart cut. */
export type SwitchSource = (typeof SOURCES)[number];

export interface SwitchTrigger {
  source: SwitchSource;
  /** Who asked, for the log and the notice (user id, "openclaw", "api"). */
  by?: string;
  lang?: Lang;
  /** Switch only if this mode is still the active one when the switch's turn comes (automatic switches). */
  onlyFrom?: string;
  /**
   * The chat (and forum topic) it was asked from: kept with a switch under way,
   * so a chat told that a restart cut its switch hears how it ended.
   */
  chat?: { id: number; topicId?: number };
  /**
   * A switch a restart left queued behind the one it cut, made at this start: its chat was told it
   * would hear how it ends, even when it ends with the mode already active.
   */
  queued?: boolean;
}

/** A switch asked before a restart and made after it (the one the restart cut, or one queued behind it). */
export function afterRestart(trigger: SwitchTrigger): boolean {
  return trigger.source === 'resume' || trigger.queued === true;
}

export type SwitchOutcome =
  | { ok: true; from: string; to: string; ms: number; alreadyActive: boolean; trigger: SwitchTrigger }
  | {
      ok: false;
      from: string;
      to: string;
      ms: number;
      reason: string;
      unknownMode?: boolean;
      /** Nothing to announce: the name was wrong, or an automatic switch no longer applied. */
      quiet?: boolean;
      /** Not made here: brainstem is stopping, and the next start deals with it (Switcher.stop). */
      leftToNextStart?: boolean;
      trigger: SwitchTrigger;
    };

/**
 * A switch's end as it is made: a failure's reason worded in each language, the one of the chat that
 * asked for the outcome, English for the log (finish).
 */
type Ending =
  | Extract<SwitchOutcome, { ok: true }>
  | (Omit<Extract<SwitchOutcome, { ok: false }>, 'reason'> & { reason: Said });

/** Two reasons one after the other, in each language. */
function joined(first: Said, then: Said): Said {
  return { en: `${first.en}${then.en}`, fr: `${first.fr}${then.fr}` };
}

/**
 * How long a switch waits for Ollama to list the model it leaves out of memory: its runner frees it
 * within seconds (longer only when stuck), and the switch goes on after, the owner told.
 */
const UNLOAD_WAIT_MS = 30_000;

/** Nothing to add to a reason. */
const NOTHING: Said = untranslated('');

/** A switch beginning its work (a model to start, a brain to wait for); one with nothing to do never does. */
export interface SwitchStart {
  from: string;
  to: string;
  /** The very object given to switchTo, so its caller knows the switch for its own. */
  trigger: SwitchTrigger;
}

const ACTIVE_KEY = 'active_mode';
const LOADED_MODEL_KEY = 'llama_loaded_model';
/**
 * A switch under way, kept until it ends: a restart (pm2, an upgrade, a crash)
 * that cuts it leaves this for the next start to find (see resumeCut).
 */
const CUT_KEY = 'switch_under_way';
const triggerSchema = z.object({
  source: z.enum(SOURCES),
  by: z.string().optional(),
  lang: z.enum(['en', 'fr']).optional(),
  onlyFrom: z.string().optional(),
  chat: z.object({ id: z.number(), topicId: z.number().optional() }).optional(),
});
const cutSwitchSchema = z.object({
  /** Tells this switch's record from an identical one's: SwitchEnds knows a record whole. */
  id: z.string().optional(),
  to: z.string(),
  /** The llama model loaded when it began: its stop commands may have run, so a failure must start it again. */
  loaded: z.string().optional(),
  /**
   * The llama model it starts: should its mode leave the config by the next start, its stop commands
   * are still known. Null: its mode has none (Claude), so it stopped no model; absent: a record of an
   * older version, which may have.
   */
  model: z.string().nullable().optional(),
  /**
   * The llama model whose stop commands it runs first, its target being a mode on another server that
   * starts none (see vacating): should that mode leave the config by the next start, this model is
   * started again. Null: it stops none; absent: a record of an older version, which may have.
   */
  vacates: z.string().nullable().optional(),
  /**
   * Whether the stop commands of the model loaded when it began (`loaded`'s, for a swap or `vacates`)
   * ran to their end: written false with the record, before they run, and true once they did (no start
   * command runs before). False, a restart came before or during them: that model may still be up,
   * and starting it again as if stopped fails (a raw `llama-server` launch finds its port taken), so
   * the next start probes its mode first. Absent: a record of an older version, which does not say.
   */
  stopsRan: z.boolean().optional(),
  trigger: triggerSchema,
});
/**
 * The switches waiting behind the one under way, in order, kept until each
 * begins: a restart makes them after the one it cut, as they would have been
 * made without it, so the user ends on the mode they asked for last.
 */
const QUEUED_KEY = 'switches_queued';
const queuedSchema = z.array(z.object({ id: z.string(), to: z.string(), trigger: triggerSchema }));

/** Why a switch ended on an error of its own (a locked database, a probe that throws). */
function brokeOff(err: unknown): Said {
  const why = (err as Error).message || String(err);
  return { en: `it broke off (${why})`, fr: `elle s’est interrompue (${why})` };
}

/**
 * The one place a mode switch happens, whatever asked for it. Steps:
 * validate → swap the llama model if needed and wait until the upstream really
 * answers → persist → announce. One switch at a time; turns wait for it.
 */
export class Switcher extends EventEmitter<{ started: [SwitchStart]; switched: [SwitchOutcome] }> {
  private chain: Promise<unknown> = Promise.resolve();
  private inFlight = 0;
  private activeId: string;
  private current: string | undefined;
  /** The trigger of the switch under way (see resumable). */
  private currentTrigger: SwitchTrigger | undefined;
  /** The switches this process keeps in QUEUED_KEY, by the trigger given to switchTo. */
  private readonly kept = new Map<SwitchTrigger, string>();
  /** CUT_KEY's value as this process wrote or found it, until its switch ends. */
  private cutRecord: string | undefined;
  /** Where the ends of switches wait, should a stop or a crash come before the database takes them. */
  private readonly ends: SwitchEnds;
  /** Set by stop(): the switches the next start makes are left to it. */
  private stopping = false;
  /** Aborted by stop(): the wait of a switch it leaves to the next start ends then (see waitSignal). */
  private readonly stopped = new AbortController();
  /** Set once the stop left a switch to the next start (see hasLeftSwitch). */
  private leftOne = false;
  /** The mode whose Ollama model the switch under way asked Ollama to unload (freeOllama). */
  private unloadedFrom: string | undefined;

  constructor(
    private readonly deps: {
      config: Config;
      modes: ModeRegistry;
      brains: Map<string, Brain>;
      readiness: ReadinessBoard;
      kv: KvStore;
      /** Where the end of a switch (queued or under way) waits while another process holds the database. */
      keptWrites: KeptWrites;
      /** Where it waits too, should a stop or a crash come before the lock goes (the Notifier's notices wait there too). */
      ends: SwitchEnds;
      notifier: Notifier;
      logger: Logger;
    },
  ) {
    super();
    this.ends = deps.ends;
    const stored = deps.kv.get(ACTIVE_KEY);
    this.activeId = stored && deps.modes.find(stored) ? deps.modes.get(stored).id : deps.config.defaultMode;
  }

  active(): ModeConfig {
    return this.deps.modes.get(this.activeId);
  }

  /**
   * The llama model loaded now, as far as brainstem knows: the one its last swap started, else the
   * active mode's. On a fresh data dir the model up is one started without brainstem (at boot), and it
   * is the active mode's, since that mode answers: the first swap must stop it, and start it again if
   * the swap fails. Taken as is, without a probe: stop commands are safe to run on a model that is not
   * up (a failed swap's restore runs them so), and a probe tells only that a server answers, not which
   * model it serves on a shared LLAMA_BASE_URL.
   */
  loadedModel(): string | undefined {
    const stored = this.deps.kv.get(LOADED_MODEL_KEY);
    if (stored !== undefined) return stored;
    const active = this.active();
    return active.kind === 'llama' ? active.llamaModel : undefined;
  }

  /**
   * Why `mode` cannot answer now, said with how to fix it: its llama model is not the one loaded (a swap
   * to another mode stopped it, and on a shared LLAMA_BASE_URL that other model would answer in its
   * name). Undefined when it can, as the active mode can once any swap of brainstem's ended.
   */
  notLoaded(mode: ModeConfig, lang?: Lang): string | undefined {
    const loaded = this.loadedModel();
    if (mode.kind !== 'llama' || mode.llamaModel === undefined || loaded === undefined) return undefined;
    if (loaded === mode.llamaModel) return undefined;
    return t(
      lang,
      `Mode ${mode.id} cannot answer: its model ${mode.llamaModel} is not loaded, model ${loaded} is. Send /mode ${mode.id} (or POST /api/mode {"mode":"${mode.id}"}) to load it, or ask for model "active"`,
      `Le mode ${mode.id} ne peut pas répondre : son modèle ${mode.llamaModel} n’est pas chargé, le modèle ${loaded} l’est. Envoyez /mode ${mode.id} (ou POST /api/mode {"mode":"${mode.id}"}) pour le charger, ou demandez le modèle « active »`,
    );
  }

  isSwitching(): boolean {
    return this.inFlight > 0;
  }

  /** The mode the switch running now goes to (the one a restart would leave for resumeCut). */
  underWay(): string | undefined {
    return this.current;
  }

  /**
   * What the next start does with this switch (the very trigger given to switchTo) if brainstem
   * stopped now: finishes it (under way), makes it after that one (queued), or nothing (undefined).
   */
  resumable(trigger: SwitchTrigger): 'under way' | 'queued' | undefined {
    if (this.current !== undefined && this.currentTrigger === trigger) return 'under way';
    return this.kept.has(trigger) ? 'queued' : undefined;
  }

  /**
   * Resolves once no switch is running (turns call this so they reach the new
   * mode), or once `signal` aborts: a turn stopped while it waits (a restart)
   * must end then and say so, not wait out a model load.
   */
  async whenIdle(signal?: AbortSignal): Promise<void> {
    if (this.inFlight === 0 || signal?.aborted) return;
    let onAbort = () => {};
    const stopped = new Promise<void>((resolve) => {
      onAbort = resolve;
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      while (this.inFlight > 0 && !signal?.aborted)
        await Promise.race([this.chain.catch(() => undefined), stopped]);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  switchTo(ref: string, trigger: SwitchTrigger): Promise<SwitchOutcome> {
    // A name that names no mode is answered at once, not after a switch under way (a model load can
    // take minutes), and without finish(): the switch under way is still under way.
    if (!this.deps.modes.find(ref)) return Promise.resolve(this.unknown(ref, trigger));
    // One a restart left queued is kept already (resumeCut).
    if (this.inFlight > 0 && !this.kept.has(trigger)) this.keepQueued(ref, trigger);
    return this.enqueue(() => {
      // Still queued (in QUEUED_KEY), as its chat was told.
      if (this.leftToNextStart(trigger)) return this.left(ref, trigger);
      this.dropQueued(trigger);
      return this.perform(ref, trigger);
    });
  }

  /** Runs `job` once the switches before it are over; turns wait for it as for a switch. */
  private enqueue(job: () => SwitchOutcome | Promise<SwitchOutcome>): Promise<SwitchOutcome> {
    this.inFlight++;
    const run = this.chain.then(job);
    this.chain = run.catch(() => undefined);
    return run.finally(() => {
      this.inFlight--;
    });
  }

  /**
   * brainstem is stopping, and its chats were told (SwitchProgress) that a switch under way is
   * finished by the next start and one queued is made then, or that one not begun is not: from now
   * on none begins, and one under way that ends is neither saved nor announced, its record left for
   * the next start. Ended here during the stop, it was never told to the chat that asked. A
   * fallback's switch goes on: the next start leaves it to its watcher.
   */
  stop(): void {
    this.stopping = true;
    this.stopped.abort();
  }

  /**
   * The stop left a switch to the next start: the active mode is the one its asker leaves, so a turn
   * that waited for that switch to reach `active` must not be answered by it.
   */
  hasLeftSwitch(): boolean {
    return this.leftOne;
  }

  private leftToNextStart(trigger: SwitchTrigger): boolean {
    return this.stopping && trigger.source !== 'fallback';
  }

  /**
   * Ends a switch's wait for its brain, and a model command it runs, at the stop, when the stop leaves
   * the switch to the next start: a wait that went on (a `claude auth status` or a `systemctl start`
   * that hangs) would only hold the stop and the turns waiting for the switch. A fallback's
   * switch goes on, as stop() says.
   */
  private waitSignal(trigger: SwitchTrigger): { signal?: AbortSignal } {
    return trigger.source === 'fallback' ? {} : { signal: this.stopped.signal };
  }

  /** What the caller of a switch the stop leaves hears (a turn's intent, a tool): nothing is saved nor announced. */
  private left(to: string, trigger: SwitchTrigger): SwitchOutcome {
    const next = this.resumable(trigger);
    this.leftOne = true;
    this.deps.logger.info({ to, next }, 'brainstem is stopping: the switch is left to the next start');
    const reason = next
      ? t(
          trigger.lang,
          'brainstem is restarting: it makes the switch once it is back',
          'brainstem redémarre : il fait la bascule à son retour',
        )
      : t(
          trigger.lang,
          `brainstem is restarting: send /mode ${to} again once it is back`,
          `brainstem redémarre : renvoyez /mode ${to} à son retour`,
        );
    const id = this.deps.modes.find(to)?.id ?? to;
    return {
      ok: false,
      from: this.activeId,
      to: id,
      ms: 0,
      reason,
      quiet: true,
      leftToNextStart: true,
      trigger,
    };
  }

  /**
   * Keeps a switch that waits behind another for the next start, should a restart come first. A
   * fallback's is not: its watcher decides again. Not kept (a locked database), it is only lost to a restart.
   */
  private keepQueued(ref: string, trigger: SwitchTrigger): void {
    if (trigger.source === 'fallback') return;
    const id = randomUUID();
    const { source, by, lang, onlyFrom, chat } = trigger;
    const entry = { id, to: this.deps.modes.get(ref).id, trigger: { source, by, lang, onlyFrom, chat } };
    try {
      this.writeQueued([...this.readQueued(), entry]);
      this.kept.set(trigger, id);
    } catch (err) {
      this.deps.logger.error({ err, to: ref }, 'could not keep a queued switch for the next start');
    }
  }

  /** Its turn has come: the switch is under way, no longer queued. */
  private dropQueued(trigger: SwitchTrigger): void {
    const id = this.kept.get(trigger);
    if (id === undefined) return;
    this.kept.delete(trigger);
    this.forgetQueued([id]);
  }

  /**
   * Takes switches out of QUEUED_KEY once they are made. Under another process's lock the removal
   * waits until the lock goes (KeptWrites), in memory and in SwitchEnds' file, not dropped: left
   * there, a switch already made would be made again at the next start, taking the user away from
   * a mode chosen since.
   */
  private forgetQueued(ids: string[]): void {
    const what = ids.length === 1 ? 'a queued switch' : `${ids.length} queued switches`;
    const written = this.deps.keptWrites.run(
      `the record that ${what} began`,
      () => {
        this.writeQueued(this.readQueued().filter((q) => !ids.includes(q.id)));
        this.ends.written({ queued: ids });
      },
      { savedIn: this.ends.file },
    );
    if (!written) this.ends.note({ queued: ids });
  }

  private readQueued(): z.infer<typeof queuedSchema> {
    return this.deps.kv.getJson(QUEUED_KEY, queuedSchema) ?? [];
  }

  private writeQueued(queued: z.infer<typeof queuedSchema>): void {
    if (queued.length === 0) this.deps.kv.delete(QUEUED_KEY);
    else this.deps.kv.set(QUEUED_KEY, JSON.stringify(queued));
  }

  /** Never rejects: whatever fails (a locked database, a probe that throws) is a failed switch, said as one. */
  private async perform(ref: string, trigger: SwitchTrigger): Promise<SwitchOutcome> {
    const started = Date.now();
    const from = this.activeId;
    this.unloadedFrom = undefined;
    let outcome: SwitchOutcome;
    try {
      outcome = await this.attempt(ref, trigger);
    } catch (err) {
      this.deps.logger.error({ err, from, to: ref }, 'switch failed unexpectedly');
      const to = this.deps.modes.find(ref)?.id ?? ref;
      const reason = brokeOff(err);
      outcome = this.finish({ ok: false, from, to, ms: Date.now() - started, reason, trigger });
    }
    // A failed switch that had unloaded the Ollama model of the mode the chat is told it stays on:
    // loaded back in the background, or that mode's next message would wait the whole load.
    if (!outcome.ok && this.unloadedFrom === this.activeId && !this.stopping) void this.loadActive('kept');
    this.unloadedFrom = undefined;
    return outcome;
  }

  /** Nothing to announce: the one who asked is answered with the modes there are. */
  private unknown(ref: string, trigger: SwitchTrigger): SwitchOutcome {
    const ids = this.deps.modes.ids().join(', ');
    return {
      ok: false,
      from: this.activeId,
      to: ref,
      ms: 0,
      unknownMode: true,
      quiet: true,
      reason: scrubText(
        t(trigger.lang, `unknown mode "${ref}". Modes: ${ids}`, `mode inconnu « ${ref} ». Modes : ${ids}`),
      ),
      trigger,
    };
  }

  private async attempt(ref: string, trigger: SwitchTrigger): Promise<SwitchOutcome> {
    const { modes, brains, kv, logger, config } = this.deps;
    const started = Date.now();
    const from = this.activeId;
    const target = modes.find(ref);
    const elapsed = () => Date.now() - started;
    // switchTo queues known names only.
    if (!target) throw new Error(`no mode ${ref}`);
    if (trigger.onlyFrom !== undefined && trigger.onlyFrom !== from) {
      const reason = untranslated(`skipped: the active mode is ${from}, not ${trigger.onlyFrom}, any more`);
      return this.finish({ ok: false, from, to: target.id, ms: elapsed(), reason, quiet: true, trigger });
    }
    const wanted = target.kind === 'llama' ? target.llamaModel : undefined;
    const loaded = this.loadedModel();
    const swapping = wanted !== undefined && wanted !== loaded && target.id !== from;
    // Otherwise a model brainstem starts may be down behind its back (a reboot, an OOM kill): asking
    // for its mode, even the active one, starts it again rather than trusting what was loaded last.
    const down = wanted !== undefined && !swapping && !(await this.deps.readiness.probe(target.id)).ok;
    // The same for a model its server unloads on its own (Ollama, after its keep_alive): asking for
    // the active mode loads it again, or the first message would wait the whole load.
    const unloaded = target.id === from && !down && (await this.outOfMemory(target.id, trigger));
    if (target.id === from && !down && !unloaded) {
      // A resumed switch to the active mode had work to do before the restart (its model was down):
      // the chat was told it would hear how it ends, and the model that came up meanwhile is that end.
      const alreadyActive = trigger.source !== 'resume';
      return this.finish({ ok: true, from, to: target.id, ms: elapsed(), alreadyActive, trigger });
    }
    const brain = brains.get(target.id);
    if (!brain) throw new Error(`no brain for mode ${target.id}`);
    // Its chat, if told, was told it did not begin.
    if (this.leftToNextStart(trigger)) return this.left(target.id, trigger);
    logger.info({ from, to: target.id, trigger }, 'switch started');
    // The end of the switch before may wait behind another process's lock (forgetCut): it lands
    // first, or this one's record would be cleared by it. Under the lock still, the switch fails here.
    this.deps.keptWrites.settle();
    // A switch a restart cut may have run the stop commands of the model loaded then: a failure
    // now must start that one again all the same.
    const previous = loaded ?? kv.getJson(CUT_KEY, cutSwitchSchema)?.loaded;
    const { source, by, lang, onlyFrom, chat } = trigger;
    /** The model this switch's swap started, once it is up. */
    let swapped: string | undefined;
    const vacating = this.vacating(loaded, target);
    const underWay = {
      id: randomUUID(),
      to: target.id,
      loaded: previous,
      model: wanted ?? null,
      vacates: vacating ?? null,
      stopsRan: false,
      trigger: { source, by, lang, onlyFrom, chat },
    };
    const record = JSON.stringify(underWay satisfies z.infer<typeof cutSwitchSchema>);
    kv.set(CUT_KEY, record);
    this.cutRecord = record;
    /** The stop commands ran (a swap's onStopped): the record says so (see stopsRan). */
    const stopsRan = () => this.rewriteCut(record, { ...underWay, stopsRan: true });
    this.current = target.id;
    this.currentTrigger = trigger;
    this.emit('started', { from, to: target.id, trigger });
    if (target.id !== from) await this.freeOllama(from, target, trigger);
    /** The llama model whose stop commands ran for a local mode on another server (see vacating). */
    let vacated: string | undefined;
    /**
     * What a failure from here on says it put back: the model this switch stopped started again,
     * the one it started stopped (restore).
     */
    const undo = (): Promise<Said> => {
      if (vacated !== undefined) return this.restore(vacated, undefined);
      if (swapped !== undefined && previous === undefined) return this.restore(undefined, swapped);
      if (swapped !== undefined && previous !== undefined && previous !== swapped)
        return this.restore(previous, swapped);
      return Promise.resolve(NOTHING);
    };
    if (vacating !== undefined) {
      await this.letAnswersEnd(this.servingModel(vacating), vacating, target.id);
      const stopped = await this.runSwap({
        stop: this.commandsOf(vacating, 'stop'),
        onStopped: () => {
          this.forgetLoaded();
          stopsRan();
        },
        start: [],
        probe: async () => ({ ok: true }),
        ...this.waitSignal(trigger),
      });
      if (this.leftToNextStart(trigger)) return this.left(target.id, trigger);
      // A stop command that failed may have half stopped it: it is started again, as after a swap.
      vacated = vacating;
      if (!stopped.ok) {
        const reason = joined(stopped.reason, await undo());
        return this.finish({ ok: false, from, to: target.id, ms: elapsed(), reason, trigger });
      }
    }

    if (wanted && (swapping || down)) {
      const unloading = loaded !== undefined && loaded !== wanted;
      if (unloading) await this.letAnswersEnd(this.servingModel(loaded), loaded, target.id);
      // Once its stop commands ran, the model loaded before is not there any more, whatever follows.
      // Until then it stays recorded: a stop or a crash that cuts them leaves it to the next start,
      // which runs them again (were the active mode one that names no model, a Claude one, nothing
      // else would name it then).
      const unloaded = () => this.forgetLoaded();
      const swap = await this.runSwap({
        stop: unloading ? this.commandsOf(loaded, 'stop') : [],
        onStopped: () => {
          if (unloading) unloaded();
          stopsRan();
        },
        start: this.commandsOf(wanted, 'start'),
        // Measured after the start commands ran, never by a probe begun before them.
        probe: () => this.deps.readiness.probe(target.id, { fresh: true }),
        // Cut by a stop: the next start, finishing the switch, runs the new model's start commands
        // again, and the old one's stop commands if they were cut (see unloaded).
        ...this.waitSignal(trigger),
      });
      if (this.leftToNextStart(trigger)) return this.left(target.id, trigger);
      if (!swap.ok) {
        // A stop command that failed may have half stopped it: it is started again below. With no
        // model to start again (the mode left is on Ollama, or Claude), what the start commands
        // half started is stopped all the same: it would hold the memory the mode left needs.
        if (unloading) unloaded();
        const back =
          previous === undefined
            ? await this.restore(undefined, wanted)
            : previous !== wanted
              ? await this.restore(previous, wanted)
              : NOTHING;
        const reason = joined(swap.reason, back);
        return this.finish({ ok: false, from, to: target.id, ms: elapsed(), reason, trigger });
      }
      swapped = wanted;
    } else {
      // Through the board: never two probes of a brain at once, and /health learns the answer.
      // Nothing changed the brain, so a probe already running answers as well as a new one.
      // A server that is loading its model is worth waiting for; one that nothing is starting is not.
      const ready = await waitUntilReady(() => this.deps.readiness.probe(target.id), {
        timeoutMs: target.kind === 'llama' ? config.llama.readyTimeoutMs : 30_000,
        intervalMs: config.llama.pollIntervalMs,
        // A server restarting on its own is back within this; one nothing is starting never comes.
        downGraceMs: config.llama.downGraceMs,
        ...this.waitSignal(trigger),
      });
      if (this.leftToNextStart(trigger)) return this.left(target.id, trigger);
      if (!ready.ok) {
        const reason = joined(ready.reason, await undo());
        return this.finish({ ok: false, from, to: target.id, ms: elapsed(), reason, trigger });
      }
    }
    // A model its server loads only on the first request (Ollama) is loaded now, within the
    // switch's time: the wake notice says the mode answers, not that its first answer will wait.
    if (brain.preload) {
      const deadline = AbortSignal.timeout(Math.max(0, config.llama.readyTimeoutMs - elapsed()));
      const stop = this.waitSignal(trigger).signal;
      const loaded = await brain.preload(stop ? AbortSignal.any([stop, deadline]) : deadline);
      if (this.leftToNextStart(trigger)) return this.left(target.id, trigger);
      if (!loaded.ok) {
        // As when the new mode cannot be saved below: the model this switch stopped is started again.
        const reason = joined(loaded.reason, await undo());
        return this.finish({ ok: false, from, to: target.id, ms: elapsed(), reason, trigger });
      }
    }
    // Saved first: a mode that could not be saved is not the active one (a restart would undo it).
    // Durably: the end of this switch, and its notice, may be kept in SwitchEnds' synced file next.
    try {
      kv.setDurably(ACTIVE_KEY, target.id);
    } catch (err) {
      // Another process's lock: the swap stopped the model of the mode the user is told they are still
      // on, which is started again. Any other error (the database closed by a stop) is only said.
      if (!isBusy(err)) throw err;
      const reason = joined(brokeOff(err), await undo());
      return this.finish({ ok: false, from, to: target.id, ms: elapsed(), reason, trigger });
    }
    this.activeId = target.id;
    if (swapped !== undefined) this.keepLoaded(swapped);
    // The model loaded stays up (the target starts none: a mode on its server, Claude), and on a fresh
    // data dir only the mode left named it (loadedModel): kept by name, or brainstem would take the
    // new mode's (none) for it, and a switch back would run its start commands on top of it (a raw
    // `llama-server` launch fails on its own port), a switch to Ollama would not stop it (vacating).
    else if (vacated === undefined && loaded !== undefined && kv.get(LOADED_MODEL_KEY) === undefined)
      this.keepLoaded(loaded);
    return this.finish({ ok: true, from, to: target.id, ms: elapsed(), alreadyActive: false, trigger });
  }

  /** Whether the ready brain of `modeId` has its model out of memory (Brain.needsLoad). */
  private async outOfMemory(modeId: string, trigger: SwitchTrigger): Promise<boolean> {
    const brain = this.deps.brains.get(modeId);
    if (!brain?.needsLoad) return false;
    // The last probe told the brain what its server is; one not ready is answered as before.
    if (!(await this.deps.readiness.latest(modeId)).ok) return false;
    return brain.needsLoad(this.waitSignal(trigger).signal ?? new AbortController().signal);
  }

  /**
   * At start-up, loads the active mode's model on a server that loads one only on the first request
   * naming it (Ollama), as a switch to that mode does: the start-up log says the mode is ready, and
   * its first message would wait the whole load. Turns do not wait for it (Ollama answers one once
   * the model is in; a switch begun meanwhile loads its own, and cuts this load: Ollama drops a
   * load whose request is cancelled, which would otherwise hold its memory and its scheduler while
   * the switch waits to load the model asked for). Never rejects: what fails is logged, and the
   * first message meets it again with the server's words.
   *
   * `back`: the brain monitor saw the server answer again after an outage (BrainMonitor's "answers
   * again" notice), or after fewer failed probes than make one (a quick restart): a restarted Ollama
   * has no model in memory, and the first message would wait the whole load as after a start. The
   * same load, cut the same way, made only when the model is out of memory (Brain.needsLoad).
   */
  async loadActive(occasion: 'start-up' | 'back' | 'kept' = 'start-up'): Promise<void> {
    const when =
      occasion === 'start-up'
        ? 'at start-up'
        : occasion === 'back'
          ? 'once its server answered again'
          : 'after a failed switch away';
    const { brains, readiness, config, logger } = this.deps;
    const mode = this.active();
    const brain = brains.get(mode.id);
    if (!brain?.preload) return;
    const away = new AbortController();
    const onStarted = ({ to }: SwitchStart) => {
      if (to !== mode.id) away.abort();
    };
    this.on('started', onStarted);
    try {
      // The start's first probe, which tells the brain what its server is.
      const ready = await readiness.latest(mode.id);
      // The failed switch that asks for it is still in flight; a switch queued behind it cuts the load.
      const busy = occasion !== 'kept' && this.inFlight > 0;
      if (!ready.ok || this.stopping || busy || this.activeId !== mode.id) return;
      // Back after a probe failed: a server that kept its model (no restart, only a slow answer) has
      // nothing to load, and a load would only renew its keep_alive. Kept after a failed switch: an
      // unload Ollama did not carry out left it there.
      if (occasion !== 'start-up' && brain.needsLoad && !(await brain.needsLoad(this.stopped.signal))) return;
      const deadline = AbortSignal.timeout(config.llama.readyTimeoutMs);
      const loaded = await brain.preload(AbortSignal.any([this.stopped.signal, deadline, away.signal]));
      if (this.stopping) return;
      if (away.signal.aborted) {
        logger.info({ mode: mode.id }, `brain ${mode.id}: its model's load ${when} was cut by a switch`);
        return;
      }
      // llama-server has its model loaded once ready: nothing was done, nothing to say.
      if (loaded.ok && loaded.detail)
        logger.info({ mode: mode.id, detail: loaded.detail.en }, `brain ${mode.id}: its model is loaded`);
      else if (!loaded.ok)
        logger.warn(
          { mode: mode.id, reason: loaded.reason.en },
          `brain ${mode.id}: its model could not be loaded ${when}`,
        );
    } catch (err) {
      logger.warn({ err, mode: mode.id }, `brain ${mode.id}: its model could not be loaded ${when}`);
    } finally {
      this.off('started', onStarted);
    }
  }

  /**
   * The llama model (started by `llama.models` commands) to stop before a switch to `target`, a
   * local mode on another server that loads its model itself (Ollama, a llama-server started
   * without brainstem): the two would share the GPU, and the model loaded would keep the memory
   * the target's needs (Ollama then refuses it, "requires more system memory", or runs it on the
   * CPU). Undefined when there is none, when the target starts its own (a swap stops it then), or
   * is on that model's server (it answers with the model loaded). Left loaded for a switch to
   * Claude, which needs no GPU here, as freeOllama leaves Ollama's model: a switch back is then at once.
   */
  private vacating(loaded: string | undefined, target: ModeConfig): string | undefined {
    if (loaded === undefined || target.kind !== 'llama' || target.llamaModel !== undefined) return undefined;
    const { modes, config } = this.deps;
    const owners = modes.all.filter((m) => m.kind === 'llama' && m.llamaModel === loaded);
    // A model no mode names any more (the config changed) was served at llama.baseUrl.
    const servers =
      owners.length > 0 ? owners.map((m) => this.serverOf(m)) : [serverKey(config.llama.baseUrl)];
    return servers.includes(this.serverOf(target)) ? undefined : loaded;
  }

  /** The server a local mode's requests go to, one however its URL is written (see serverKey). */
  private serverOf(m: ModeConfig): string {
    return serverKey(m.baseUrl ?? this.deps.config.llama.baseUrl);
  }

  /**
   * Leaving a mode on Ollama for a local model another server loads (llama-server, another Ollama):
   * Ollama holds the model it served for its keep_alive (5 minutes by default) after the last
   * answer, and the model this switch starts on the same GPU would lack that memory (it fails to
   * load, or runs on the CPU). So it is unloaded first, once the answers streaming from it ended (as
   * before stop commands), and the switch waits for Ollama to list it out of memory, for at most
   * UNLOAD_WAIT_MS; a model still there is logged and told, and the switch goes on (the new model
   * may fit all the same). Left to Ollama: a switch to Claude, which needs no GPU here, so a switch
   * back finds the model in memory until its keep_alive runs out; and one to another model of the
   * same Ollama, whose scheduler evicts what the next model needs and keeps both when both fit: the
   * models of that Ollama's other modes it still has in memory are unloaded too when the switch then
   * goes to another server.
   */
  private async freeOllama(fromId: string, target: ModeConfig, trigger: SwitchTrigger): Promise<void> {
    const { modes, brains } = this.deps;
    const leaving = modes.find(fromId);
    const brain = brains.get(fromId);
    if (leaving?.kind !== 'llama' || target.kind !== 'llama' || !brain?.unload || leaving.model === undefined)
      return;
    // One Ollama however its URL is written (a trailing slash, `/v1`, `localhost` for 127.0.0.1).
    if (this.serverOf(leaving) === this.serverOf(target)) return;
    // Should the switch fail, perform loads it back (loadActive), when Ollama no longer has it.
    this.unloadedFrom = fromId;
    const server = this.serverOf(leaving);
    await this.freeOllamaModel(fromId, brain, leaving.model, server, target, trigger);
    // A switch between two modes of this Ollama left the model of the first beside the second (Ollama
    // keeps both when both fit): it holds memory the model this switch starts needs as much. Each other
    // mode's model Ollama still has in memory is unloaded too, the same way.
    // By Ollama's key of each (ollamaModelKey): a mode naming the model left another way is not another model.
    const others = new Map<string, { id: string; brain: Brain; model: string }>();
    const left = ollamaModelKey(leaving.model);
    for (const m of modes.all) {
      const b = brains.get(m.id);
      if (m.kind !== 'llama' || m.model === undefined) continue;
      const key = ollamaModelKey(m.model);
      if (key === left || others.has(key)) continue;
      if (this.serverOf(m) === server && b?.unload && b.needsLoad)
        others.set(key, { id: m.id, brain: b, model: m.model });
    }
    const signal = this.waitSignal(trigger).signal ?? new AbortController().signal;
    for (const { model, ...other } of others.values()) {
      if (this.leftToNextStart(trigger)) return;
      if (await other.brain.needsLoad?.(signal)) continue;
      await this.freeOllamaModel(other.id, other.brain, model, server, target, trigger);
    }
  }

  /** Unloads `model` (mode `modeId`'s, on the Ollama at `server`) for a switch to `target`: see freeOllama. */
  private async freeOllamaModel(
    modeId: string,
    brain: Brain,
    model: string,
    server: string,
    target: ModeConfig,
    trigger: SwitchTrigger,
  ): Promise<void> {
    const { modes, brains, config, logger, notifier, kv } = this.deps;
    if (!brain.unload) return;
    // Every mode whose answers stream from that model, however it names it (ollamaModelKey).
    const key = ollamaModelKey(model);
    const serving = modes.all
      .filter(
        (m) =>
          m.kind === 'llama' &&
          m.model !== undefined &&
          ollamaModelKey(m.model) === key &&
          this.serverOf(m) === server,
      )
      .flatMap((m) => brains.get(m.id) ?? []);
    const waitMs = Math.min(UNLOAD_WAIT_MS, config.llama.readyTimeoutMs);
    // The wait for Ollama is counted once the answers ended, not from here: an answer that ends late
    // in server.shutdownGraceMs (30 s or more) left none of it, and the unload was never even sent.
    const bound = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const stop = this.waitSignal(trigger).signal;
    const freed = await brain
      .unload(stop ? AbortSignal.any([stop, bound.signal]) : bound.signal, async () => {
        await this.letAnswersEnd(serving, model, target.id);
        timer = setTimeout(() => bound.abort(), waitMs);
      })
      .finally(() => clearTimeout(timer));
    if (freed.ok) {
      if (freed.detail)
        logger.info({ mode: modeId, detail: freed.detail.en }, 'switch: the model it leaves is unloaded');
      return;
    }
    if (this.leftToNextStart(trigger)) return;
    logger.warn(
      { mode: modeId, to: target.id, waitedMs: waitMs, reason: freed.reason.en },
      'switch: the model it leaves is still in memory; the model it starts may lack memory',
    );
    const lang = trigger.lang ?? noticeLang(kv);
    // Its own closing full stop goes (an unreachable server's reason ends in one): the notice goes on after it.
    const why = saidIn(freed.reason, lang).replace(/\.+$/, '');
    notifier.notify({
      kind: 'switch',
      text: t(
        lang,
        html`⚠️ Switching to <b>${target.id}</b>: ${why}. The model of ${target.id} may lack the memory it holds.`,
        html`⚠️ Bascule vers <b>${target.id}</b> : ${why}. Le modèle de ${target.id} risque de manquer de la mémoire qu’il occupe.`,
      ),
    });
  }

  /**
   * Answers already streaming from a model (new turns wait for the switch)
   * may end before its stop commands cut them, for at most
   * `server.shutdownGraceMs`, the time a restart gives them too. Those still
   * running then are ended saying so: cut by the stop commands, they would say
   * only that the stream broke, and on a server that swaps models itself go on
   * from a model being stopped.
   */
  private async letAnswersEnd(serving: Brain[], model: string, to: string): Promise<void> {
    const { config, logger } = this.deps;
    const ended = Promise.all(serving.map((b) => b.settled?.()));
    if (await waitAtMost(ended, 0)) return;
    logger.info({ model }, 'switch: waiting for the answers of the model it stops to end');
    const graceMs = config.server.shutdownGraceMs;
    if (await waitAtMost(ended, graceMs)) return;
    logger.warn({ model, graceMs }, 'switch: answers still running are cut');
    const grace = formatDuration(graceMs);
    const why = {
      kind: 'upstream_error' as const,
      message: `the switch to mode ${to} stopped model ${model} before this answer ended (answers get ${grace}, server.shutdownGraceMs, to end first); send your message again to have it answered`,
      fr: `la bascule vers le mode ${to} a arrêté le modèle ${model} avant la fin de cette réponse (les réponses ont ${grace}, server.shutdownGraceMs, pour finir d’abord) ; renvoyez votre message pour avoir une réponse`,
    };
    for (const brain of serving) brain.cutShort?.(why);
  }

  /** The brains of the modes that `llamaModel` serves. */
  private servingModel(llamaModel: string): Brain[] {
    const { modes, brains } = this.deps;
    return modes.all
      .filter((m) => m.kind === 'llama' && m.llamaModel === llamaModel)
      .flatMap((m) => brains.get(m.id) ?? []);
  }

  /**
   * Records the model a swap left running. Under another process's lock the record waits in memory
   * (KeptWrites): until it lands none is recorded (the swap deleted the old one), and loadedModel()
   * takes the active mode's, which is this model once the mode is saved, or the restored one's.
   */
  private keepLoaded(model: string): void {
    this.deps.keptWrites.run(`the model loaded (${model})`, () => this.deps.kv.set(LOADED_MODEL_KEY, model));
  }

  private commandsOf(model: string, which: 'start' | 'stop'): string[][] {
    return this.deps.config.llama.models[model]?.[which] ?? [];
  }

  /** swapLlamaModel with what every swap of a switch shares: the limits, the secrets to hide, the log. */
  private runSwap(commands: Pick<SwapOptions, 'stop' | 'start' | 'probe' | 'onStopped' | 'signal'>) {
    const { config, logger } = this.deps;
    return swapLlamaModel({
      ...commands,
      timeoutMs: config.llama.readyTimeoutMs,
      intervalMs: config.llama.pollIntervalMs,
      hiddenEnv: configuredSecrets(config),
      logger,
    });
  }

  /** No model is loaded any more (its stop commands ran): recorded, behind another process's lock if need be. */
  private forgetLoaded(): void {
    this.deps.keptWrites.run('the model stopped', () => this.deps.kv.delete(LOADED_MODEL_KEY));
  }

  /**
   * After a failed swap had stopped the model loaded before: unloads what was
   * half started and starts the previous model again, so the mode the user is
   * told they are still on can answer. Returns what to add to the failure's reason
   * (in French after a space, as French puts one before a semicolon). With no previous model (the
   * mode left is on Ollama, or Claude), only unloads what was half started: it would hold the
   * memory of the model that mode loads again.
   */
  private async restore(previous: string | undefined, failed: string | undefined): Promise<Said> {
    const { modes } = this.deps;
    if (previous === undefined) {
      if (failed === undefined) return NOTHING;
      const stopped = await this.runSwap({
        stop: this.commandsOf(failed, 'stop'),
        start: [],
        probe: async () => ({ ok: true }),
      });
      if (stopped.ok)
        return { en: `; model ${failed} was stopped`, fr: ` ; le modèle ${failed} a été arrêté` };
      return {
        en: `; stopping model ${failed} failed too (${stopped.reason.en}), so it may still hold memory until it is stopped`,
        fr: ` ; arrêter le modèle ${failed} a échoué aussi (${stopped.reason.fr}) : il peut occuper de la mémoire tant qu’il n’est pas arrêté`,
      };
    }
    const owner = modes.all.find((m) => m.kind === 'llama' && m.llamaModel === previous);
    const swap = await this.runSwap({
      stop: failed === undefined ? [] : this.commandsOf(failed, 'stop'),
      start: this.commandsOf(previous, 'start'),
      probe: owner ? () => this.deps.readiness.probe(owner.id, { fresh: true }) : async () => ({ ok: true }),
    });
    if (swap.ok) {
      this.keepLoaded(previous);
      return { en: `; model ${previous} was started again`, fr: ` ; le modèle ${previous} a été relancé` };
    }
    return {
      en: `; starting model ${previous} again failed too (${swap.reason.en}), so ${owner?.id ?? 'its mode'} cannot answer until it is started (send /mode ${owner?.id ?? previous} to try again)`,
      fr: ` ; relancer le modèle ${previous} a échoué aussi (${swap.reason.fr}) : ${owner?.id ?? 'son mode'} ne peut pas répondre tant qu’il n’est pas relancé (envoyez /mode ${owner?.id ?? previous} pour réessayer)`,
    };
  }

  /**
   * At start-up, the switches a restart or a crash cut short: the one under way
   * is finished (see resumeUnderWay), then those queued behind it are made in
   * their order, as they would have been without the restart. Returns the
   * first one's outcome.
   */
  resumeCut(): Promise<SwitchOutcome> | undefined {
    const { modes, logger } = this.deps;
    // Queued again under their own ids, each taken out of the database as it begins.
    let left: z.infer<typeof queuedSchema> = [];
    try {
      this.applyEnds();
      const mine = new Set(this.kept.values());
      left = this.readQueued().filter((q) => !mine.has(q.id) && !this.ends.queuedBegan(q.id));
    } catch (err) {
      logger.error({ err }, 'could not read the switches a restart left queued');
    }
    const gone = left.filter((q) => !modes.find(q.to));
    for (const { to } of gone)
      logger.warn({ to }, 'a switch a restart left queued names a mode no longer configured: dropped');
    if (gone.length > 0) this.forgetQueued(gone.map((q) => q.id));
    const resumed = this.resumeUnderWay();
    for (const { id, to, trigger } of left.filter((q) => !gone.includes(q))) {
      logger.info({ to, trigger }, 'making a switch a restart left queued');
      const queued = { ...trigger, queued: true };
      this.kept.set(queued, id);
      void this.switchTo(to, queued);
    }
    return resumed;
  }

  /**
   * The ends of switches the last run could not write to the database (SwitchEnds): written now,
   * or kept again behind the lock. Either way resumeCut does not make those switches again.
   */
  private applyEnds(): void {
    const { cut, queued } = this.ends.pending;
    if (cut === undefined && queued.length === 0) return;
    const record = this.deps.kv.get(CUT_KEY);
    const waiting = new Set(this.readQueued().map((q) => q.id));
    this.deps.logger.info(
      { file: this.ends.file },
      'the ends of switches the last run kept for this start are applied: those switches are not made again',
    );
    // What the database has already (a crash came after the write, before the file went) is done with.
    this.ends.written({
      cut: cut !== record ? cut : undefined,
      queued: queued.filter((id) => !waiting.has(id)),
    });
    if (this.ends.cutEnded(record)) {
      this.cutRecord = record;
      this.forgetCut();
    }
    const began = queued.filter((id) => waiting.has(id));
    if (began.length > 0) this.forgetQueued(began);
  }

  /**
   * Finishes, once, a switch that a restart or a crash cut: the user asked for
   * that mode, and the model the switch stopped may be down. Not resumed: a
   * fallback's switch (its watcher decides again, and arms the way back), and a
   * resumed switch cut again (a start command that brings brainstem down would
   * loop), and one to a mode no longer configured; the owner is told of the
   * latter two, and the model of the mode they stay on is started again.
   */
  private resumeUnderWay(): Promise<SwitchOutcome> | undefined {
    const { kv, modes, logger } = this.deps;
    const record = kv.get(CUT_KEY);
    // Ended before the last stop, its end still waiting behind another process's lock (applyEnds).
    if (this.ends.cutEnded(record)) return undefined;
    const cut = kv.getJson(CUT_KEY, cutSwitchSchema);
    if (!cut) return undefined;
    this.cutRecord = record;
    const { to, trigger } = cut;
    if (trigger.source === 'fallback') {
      logger.info({ to }, 'a fallback switch was cut by a restart: its watcher decides again');
      this.forgetCut();
      return undefined;
    }
    const target = modes.find(to);
    if (trigger.source === 'resume' || !target) {
      const from = this.activeId;
      const reason: Said = !target
        ? { en: `mode ${to} is no longer configured`, fr: `le mode ${to} n’est plus configuré` }
        : {
            en: `brainstem restarted during it twice, so it did not try a third time (send /mode ${to} to try again)`,
            fr: `brainstem a redémarré deux fois pendant la bascule, sans réessayer une troisième (envoyez /mode ${to} pour réessayer)`,
          };
      logger.warn({ to, reason: reason.en }, 'a switch cut by a restart is not resumed');
      const outcome = {
        ok: false as const,
        from,
        to,
        ms: 0,
        reason,
        trigger: { ...trigger, source: 'resume' as const },
      };
      // The cut switch may have run the stop commands of the model loaded then: the mode the user is
      // told they are still on (the active one, the default mode if that one left the config too)
      // cannot answer until its model is started again, its own switch's way. A target that left the
      // config may have swapped (its record names the model it started, a record of an older version
      // none; null, a mode with no model, did not): its model is started all the same, else the user
      // is left with no model up.
      const active = this.active();
      const previous = active.kind === 'llama' ? active.llamaModel : undefined;
      const failed = target
        ? target.kind === 'llama'
          ? target.llamaModel
          : undefined
        : (cut.model ?? undefined);
      // A target on another server that starts no model (an Ollama mode) may have stopped it too
      // (vacating). Gone from the config, that is known from its record only: without `vacates`, the
      // record said only that it started no model, and the model it stopped was never started again.
      // A record of an older version does not say ('maybe'): the model is started again if its mode
      // does not answer (no other model was started, so a server that answers serves it).
      const swapped: boolean | 'maybe' = target
        ? failed !== undefined || this.vacating(previous, target) !== undefined
        : cut.model !== null || (cut.vacates === undefined ? 'maybe' : cut.vacates !== null);
      // Cut before its stop commands ran to their end (stopsRan false): the model they stop may still be
      // up, and none of its start commands ran (they come after). Started again only if its mode does
      // not answer: started on top of itself, a raw `llama-server` launch fails on its own port.
      const unsure = swapped === true && cut.stopsRan === false && previous !== undefined;
      // With no model to start again (the user stays on an Ollama or a Claude mode), the model the cut
      // switch started is stopped all the same, as after a failed swap (restore): it would hold the
      // memory the mode stayed on needs, Ollama then unable to load its model back.
      const nothingToDo = previous === undefined ? failed === undefined : previous === failed;
      if (!swapped || nothingToDo) {
        this.finish(outcome);
        return undefined;
      }
      return this.enqueue(async () => {
        if (swapped === 'maybe' || unsure) {
          const up = await this.deps.readiness.probe(active.id, { fresh: true }).catch(() => ({ ok: false }));
          if (up.ok) return this.finish(outcome);
        }
        const back = await this.restore(previous, failed).catch((err: unknown) => {
          logger.error(
            { err, model: previous ?? failed },
            'could not put back the models a cut switch had swapped',
          );
          return NOTHING;
        });
        const done = this.finish({ ...outcome, reason: joined(reason, back) });
        // The start-up load of the active mode's Ollama model left it to this switch (busy): made now, once
        // the model stopped above freed its memory (a cut switch from an Ollama mode had unloaded it).
        if (!this.stopping) void this.loadActive('kept');
        return done;
      });
    }
    logger.info({ to, trigger }, 'resuming the switch a restart cut');
    return this.switchTo(to, { ...trigger, source: 'resume' });
  }

  /**
   * Rewrites the record of the switch under way (`was`, as this process wrote it) to `next`, once a
   * step of it is done (stopsRan). Not written (another process's lock), the record says less than
   * was done, which the next start makes up for (it probes before it starts a model again): logged,
   * the switch goes on.
   */
  private rewriteCut(was: string, next: z.infer<typeof cutSwitchSchema>): void {
    if (this.cutRecord !== was) return;
    const record = JSON.stringify(next);
    try {
      this.deps.kv.set(CUT_KEY, record);
      this.cutRecord = record;
    } catch (err) {
      this.deps.logger.warn(
        { err, to: next.to },
        'the record of the switch under way could not say its stop commands ran; a restart now would probe the model before starting it again',
      );
    }
  }

  /**
   * A switch is over. Under another process's lock the clearing waits until the lock goes
   * (KeptWrites), in memory and in SwitchEnds' file, not dropped: left there, a switch that ended
   * would be made again at the next start.
   */
  private forgetCut(): void {
    const cut = this.cutRecord;
    this.cutRecord = undefined;
    const written = this.deps.keptWrites.run(
      'the end of the switch under way',
      () => {
        this.deps.kv.delete(CUT_KEY);
        if (cut !== undefined) this.ends.written({ cut });
      },
      { savedIn: cut === undefined ? undefined : this.ends.file },
    );
    if (!written && cut !== undefined) this.ends.note({ cut });
  }

  private finish(done: Ending): SwitchOutcome {
    const { logger, notifier } = this.deps;
    // The one way out of a switch: a reason (a swap command's last output, a probe's error naming the
    // upstream's URL) is scrubbed here before a chat, the notices table or the log has it. Its own
    // closing full stop goes: every text that shows it goes on after it with ". Still on …".
    const tidy = (text: string) => scrubText(text).replace(/\.+$/, '');
    const outcome: SwitchOutcome = done.ok
      ? done
      : { ...done, reason: tidy(saidIn(done.reason, done.trigger.lang)) };
    this.forgetCut();
    this.current = undefined;
    this.currentTrigger = undefined;
    if (outcome.ok && outcome.alreadyActive) {
      // Nothing happened, so no notice; but the chat of a switch a restart left queued hears it.
      if (outcome.trigger.queued) this.emit('switched', outcome);
      return outcome;
    }
    // The notice is stored before it is sent: kept behind another process's lock, it waits on disk
    // too (Notifier), and the one who asked hears the outcome from the switch's own reply meanwhile.
    // A switch no chat asked for (the API, a brain's tool) speaks the notices' language, as they all do.
    const lang = outcome.trigger.lang ?? noticeLang(this.deps.kv);
    if (outcome.ok) {
      logger.info({ from: outcome.from, to: outcome.to, ms: outcome.ms }, 'switch done');
      notifier.notify({ kind: 'switch', text: this.wakeText(outcome, lang) });
    } else if (!outcome.quiet && !done.ok) {
      // The log is the operator's, in English; the chat that asked has the reason in its language.
      logger.warn({ from: outcome.from, to: outcome.to, reason: tidy(done.reason.en) }, 'switch failed');
      const reason = tidy(saidIn(done.reason, lang));
      notifier.notify({ kind: 'switch_failed', text: this.failText({ ...outcome, reason }, lang) });
    }
    this.emit('switched', outcome);
    return outcome;
  }

  /** The wake notice: sent only once the new brain answered its readiness probe. */
  wakeText(o: Extract<SwitchOutcome, { ok: true }>, lang: Lang): Html {
    const list = Html.join(
      this.deps.modes.all.map((m) => (m.id === o.to ? html`• <b>${m.id}</b>` : html`• ${m.id}`)),
      '\n',
    );
    const mode = this.deps.modes.get(o.to);
    const resumed = o.trigger.source === 'resume';
    const queued = t(lang, ', as asked before a restart', ', comme demandé avant un redémarrage');
    // The active mode asked for again: its model had gone down and was started again. Resumed, the time
    // taken is this process's only, the start having run before the restart: not worth showing.
    if (o.from === o.to) {
      const took = resumed ? '' : ` in ${formatDuration(o.ms)}`;
      const tookFr = resumed ? '' : ` en ${formatDuration(o.ms)}`;
      return t(
        lang,
        html`Mode <b>${o.to}</b> is awake (${mode.description}). Its model was started again${took}${resumed ? ', finishing the switch a restart had cut' : ''}.\n${list}`,
        html`Mode <b>${o.to}</b> prêt (${mode.description}). Son modèle a été relancé${tookFr}${resumed ? ', pour finir la bascule qu’un redémarrage avait coupée' : ''}.\n${list}`,
      );
    }
    return t(
      lang,
      html`Mode <b>${o.to}</b> is awake (${mode.description}). Switched from ${o.from} in ${formatDuration(o.ms)}${resumed ? ', finishing the switch a restart had cut' : o.trigger.queued ? queued : ''}.\n${list}`,
      html`Mode <b>${o.to}</b> prêt (${mode.description}). Bascule depuis ${o.from} en ${formatDuration(o.ms)}${resumed ? ', pour finir la bascule qu’un redémarrage avait coupée' : o.trigger.queued ? queued : ''}.\n${list}`,
    );
  }

  /** The failure notice; `o.reason` is worded in `lang`. */
  failText(o: Extract<SwitchOutcome, { ok: false }>, lang: Lang): Html {
    // A cut switch not resumed (resumeCut) took no time of this process's.
    const after = o.ms > 0 ? ` after ${formatDuration(o.ms)}` : '';
    const afterFr = o.ms > 0 ? ` après ${formatDuration(o.ms)}` : '';
    return t(
      lang,
      html`Switch to <b>${o.to}</b> failed${after}: ${o.reason}. Still on <b>${o.from}</b>.`,
      html`Échec de la bascule vers <b>${o.to}</b>${afterFr} : ${o.reason}. Toujours en <b>${o.from}</b>.`,
    );
  }
}
