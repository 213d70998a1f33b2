import type { Brain, Readiness } from '../../brains/types.js';
import type { ModeConfig } from '../config.js';

export interface StatusLine {
  mode: ModeConfig;
  active: boolean;
  ready: boolean;
  detail: string;
}

/**
 * Every brain's readiness probe, bounded, for status replies and /health.
 * A result younger than `maxAgeMs` is reused and concurrent callers share one
 * probe, so a monitor polling /health does not spawn a `claude --version` each time.
 */
export class ReadinessCache {
  private readonly probes = new Map<string, { at: number; result: Promise<Readiness> }>();

  constructor(private readonly brains: ReadonlyMap<string, Brain>) {}

  async statusLines(
    modes: readonly ModeConfig[],
    activeId: string,
    timeoutMs: number,
    maxAgeMs: number,
  ): Promise<StatusLine[]> {
    return Promise.all(
      modes.map(async (mode) => {
        const r = await this.probe(mode.id, timeoutMs, maxAgeMs);
        return {
          mode,
          active: mode.id === activeId,
          ready: r.ok,
          detail: r.ok ? (r.detail ?? 'ready') : r.reason,
        };
      }),
    );
  }

  private probe(modeId: string, timeoutMs: number, maxAgeMs: number): Promise<Readiness> {
    const cached = this.probes.get(modeId);
    if (cached && Date.now() - cached.at <= maxAgeMs) return cached.result;
    const brain = this.brains.get(modeId);
    const result: Promise<Readiness> = brain
      ? brain.ready(AbortSignal.timeout(timeoutMs)).catch((e: Error) => ({ ok: false, reason: e.message }))
      : Promise.resolve({ ok: false, reason: 'no brain' });
    this.probes.set(modeId, { at: Date.now(), result });
    return result;
  }
}
