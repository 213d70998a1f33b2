import type { ModeConfig } from '../config.js';
import type { Said } from '../i18n.js';
import type { KnownReadiness, ReadinessBoard } from '../readiness.js';
import { waitAtMost } from '../wait.js';

export interface StatusLine {
  mode: ModeConfig;
  active: boolean;
  ready: boolean;
  /** The probe's words (or why its model is not loaded), in each language. */
  detail: Said;
  /** The same in a word that quotes nothing of the upstream, for the public /health: ready, checking, not loaded or a NotReadyKind. */
  summary: string;
  /** When the readiness shown was measured (undefined: no probe has finished yet). */
  checkedAt?: number;
  /** A probe is running now. */
  checking: boolean;
}

/**
 * Every mode's readiness as faces show it, read from the readiness board
 * (src/readiness.ts), which owns the probes and their results.
 */
export class StatusLines {
  constructor(
    private readonly readiness: ReadinessBoard,
    private readonly modes: () => readonly ModeConfig[],
    private readonly activeId: () => string,
    /** Why a mode cannot answer whatever its upstream's probe says (Switcher.notLoaded). */
    private readonly notLoaded: (mode: ModeConfig) => Said | undefined,
  ) {}

  /** Every mode's last known readiness, at once: never waits for a probe (for /health). */
  known(): StatusLine[] {
    return this.modes().map((mode) => this.line(mode, this.readiness.known(mode.id)));
  }

  /**
   * Every mode's readiness from a probe running or started now (shared with
   * any other caller), waiting at most `timeoutMs`; a mode whose probe takes
   * longer shows its last known state.
   */
  async fresh(timeoutMs: number): Promise<StatusLine[]> {
    await waitAtMost(Promise.all(this.modes().map((m) => this.readiness.probe(m.id))), timeoutMs);
    return this.known();
  }

  private line(mode: ModeConfig, known: KnownReadiness): StatusLine {
    const r = known.result;
    // Its upstream answering says nothing when another model answers there in its place.
    const notLoaded = this.notLoaded(mode);
    return {
      mode,
      active: mode.id === this.activeId(),
      ready: r?.ok === true && notLoaded === undefined,
      detail:
        notLoaded ??
        (!r
          ? { en: 'checking…', fr: 'vérification…' }
          : r.ok
            ? (r.detail ?? { en: 'ready', fr: 'prêt' })
            : r.reason),
      summary: notLoaded ? 'not loaded' : !r ? 'checking…' : r.ok ? 'ready' : (r.kind ?? 'error'),
      checkedAt: known.at,
      checking: known.checking,
    };
  }
}
