import { z } from 'zod';
import type { Readiness } from '../brains/types.js';
import type { Core } from './core.js';
import { html } from './html.js';
import { formatDuration, formatUtc, noticeLang, t } from './i18n.js';
import type { Part } from './part.js';
import type { SwitchOutcome } from './switcher.js';
import { settleWithin } from './wait.js';

/**
 * Tells the owner when the active mode's brain stops answering its readiness
 * probe, and when it is back. Probes at a modest pace; a brain is called down
 * only after consecutive failures (one slow probe is not an outage), and
 * checks are skipped during a switch, when not being ready is expected. The
 * outage is kept in SQLite, so a restart in the middle of one still ends with
 * the "back up" notice and never repeats the "down" one.
 */

export interface BrainMonitorOptions {
  /** Time between two probes. */
  intervalMs?: number;
  /** Failed probes in a row before the brain is called down. */
  failuresBeforeDown?: number;
  /** Limit of one probe. */
  probeTimeoutMs?: number;
}

const OUTAGE_KEY = 'brain_outage';
const outageSchema = z.object({ mode: z.string(), since: z.number(), reason: z.string() });
type Outage = z.infer<typeof outageSchema>;

export class BrainMonitor {
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private failingMode: string | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly core: Core,
    private readonly opts: Required<BrainMonitorOptions>,
  ) {}

  start(): void {
    this.core.switcher.on('switched', this.onSwitched);
    this.timer = setInterval(() => {
      this.running ??= this.check()
        // Once its notices are raised: a test that says none came more waits for later checks on this line.
        .then(() => this.core.logger.debug('brain monitor checked'))
        // A database another process holds (a sqlite3 shell, a backup): the next probe tries again.
        .catch((err: unknown) => this.core.logger.warn({ err }, 'brain monitor check failed; will retry'))
        .finally(() => {
          this.running = undefined;
        });
    }, this.opts.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.core.switcher.off('switched', this.onSwitched);
    clearInterval(this.timer);
    await this.running;
  }

  /** One probe of the active brain, with the notices it calls for. */
  async check(): Promise<void> {
    const { switcher, kv, notifier, logger } = this.core;
    if (switcher.isSwitching()) return;
    const mode = switcher.active();
    const outage = this.outage();
    if (outage && outage.mode !== mode.id) {
      // The mode changed since: the switch's own notice said whether the new one is ready.
      kv.set(OUTAGE_KEY, '');
    }
    // Through the readiness board: joins a probe already running rather than starting a second one.
    const ms = this.opts.probeTimeoutMs;
    const late: Readiness = {
      ok: false,
      reason: { en: `no answer within ${ms} ms`, fr: `pas de réponse en ${ms} ms` },
    };
    const result = await settleWithin(this.core.readiness.probe(mode.id), this.opts.probeTimeoutMs, late);
    if (this.stopped || switcher.isSwitching() || switcher.active().id !== mode.id) return;
    const lang = noticeLang(kv);
    const current = this.outage();

    if (result.ok) {
      // A probe of this mode failed since the last that passed, too few to call an outage: a quick
      // restart (systemctl restart ollama, an upgrade) looks so, and left no model in memory either.
      const blipped = this.failures > 0 && this.failingMode === mode.id;
      this.failures = 0;
      if (!current && blipped) {
        logger.info({ mode: mode.id }, 'brain answers again after a failed probe');
        void switcher.loadActive('back');
      }
      if (current) {
        kv.set(OUTAGE_KEY, '');
        logger.info({ mode: mode.id }, 'brain back up');
        notifier.notify({
          kind: 'brain_health',
          dedupeKey: `brain:up:${mode.id}:${current.since}`,
          text: t(
            lang,
            html`✅ Mode <b>${mode.id}</b> answers again (down for ${formatDuration(Date.now() - current.since)}).`,
            html`✅ Le mode <b>${mode.id}</b> répond de nouveau (en panne pendant ${formatDuration(Date.now() - current.since)}).`,
          ),
        });
        // A restarted Ollama has no model in memory: loaded now, in the background, as at start-up,
        // rather than by the first message (nothing to do for llama-server or Claude).
        void switcher.loadActive('back');
      }
      return;
    }

    this.failures = this.failingMode === mode.id ? this.failures + 1 : 1;
    this.failingMode = mode.id;
    if (current || this.failures < this.opts.failuresBeforeDown) return;
    const since = Date.now();
    const down: Outage = { mode: mode.id, since, reason: result.reason.en };
    kv.set(OUTAGE_KEY, JSON.stringify(down));
    logger.warn({ mode: mode.id, reason: result.reason.en }, 'brain down');
    notifier.notify({
      kind: 'brain_health',
      dedupeKey: `brain:down:${mode.id}:${since}`,
      text: t(
        lang,
        html`🔴 Mode <b>${mode.id}</b> does not answer since ${formatUtc(since)}: ${result.reason.en}. Messages to it will fail until it is back; /mode switches to another one.`,
        html`🔴 Le mode <b>${mode.id}</b> ne répond plus depuis ${formatUtc(since)} : ${result.reason.fr}. Les messages échoueront jusqu’à son retour ; /mode pour en changer.`,
      ),
    });
  }

  /**
   * A switch to the mode that was down (its model started again) ends the outage: the switch's wake
   * notice said the mode answers, and a "back up" notice after it would say it twice.
   */
  private readonly onSwitched = (o: SwitchOutcome): void => {
    if (!o.ok || o.alreadyActive) return;
    try {
      if (this.outage()?.mode !== o.to) return;
      this.core.kv.set(OUTAGE_KEY, '');
      this.failures = 0;
      this.core.logger.info({ mode: o.to }, 'brain back up: the switch to it said so');
    } catch (err) {
      // Run inside the switch's own ending: a database another process holds must not break it.
      this.core.logger.warn({ err, mode: o.to }, 'could not record that the brain is back up');
    }
  };

  private outage(): Outage | undefined {
    return this.core.kv.getJson(OUTAGE_KEY, outageSchema);
  }
}

/** Probes the active brain every 30 s by default; down after two failures in a row. */
export function brainMonitorPart(core: Core, opts: BrainMonitorOptions = {}): Part {
  const monitor = new BrainMonitor(core, {
    intervalMs: opts.intervalMs ?? 30_000,
    failuresBeforeDown: opts.failuresBeforeDown ?? 2,
    probeTimeoutMs: opts.probeTimeoutMs ?? 10_000,
  });
  return { start: () => monitor.start(), stop: () => monitor.stop() };
}
