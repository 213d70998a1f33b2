import type { Lang } from './i18n.js';
import type { Logger } from './logger.js';
import type { ModeRegistry } from './modes.js';
import type { Switcher } from './switcher.js';

/**
 * Removes `[SWITCH:mode]` markers from streamed text, also when a marker is
 * split across chunks: text that could still become a marker is held back
 * (never more than a marker's length) and everything else passes at once.
 */
const MARKER = /\[SWITCH:\s*([A-Za-z0-9_-]{1,40})\s*\]/gi;
const MAX_MARKER = 52;

export class SwitchMarkerFilter {
  private held = '';
  readonly found: string[] = [];

  push(chunk: string): string {
    const text = this.held + chunk;
    const cleaned = this.extract(text);
    const cut = this.holdFrom(cleaned);
    this.held = cleaned.slice(cut);
    return cleaned.slice(0, cut);
  }

  /** End of stream: whatever was held is plain text. */
  flush(): string {
    const rest = this.held;
    this.held = '';
    return rest;
  }

  private extract(text: string): string {
    return text.replace(MARKER, (_m, mode: string) => {
      this.found.push(mode.toLowerCase());
      return '';
    });
  }

  /** Index from which the text might be the start of a marker. */
  private holdFrom(text: string): number {
    const start = text.lastIndexOf('[');
    if (start === -1 || text.length - start > MAX_MARKER) return text.length;
    const tail = text.slice(start);
    return /^\[(S(W(I(T(C(H(:\s*[A-Za-z0-9_-]*\s*)?)?)?)?)?)?)?$/i.test(tail) ? start : text.length;
  }
}

/** What following a marker needs: the modes it may name and the one switching orchestrator. */
export interface MarkerTargets {
  modes: Pick<ModeRegistry, 'find'>;
  switcher: Pick<Switcher, 'switchTo'>;
  logger: Logger;
}

/**
 * Switches to the mode the markers of an answer named (once each, not
 * awaited: the answer is over, the switch announces itself); a marker naming
 * no mode is logged and ignored. `by` says whose answer it was.
 */
export function followSwitchMarkers(
  found: readonly string[],
  to: MarkerTargets,
  by: string,
  lang?: Lang,
): void {
  for (const target of new Set(found)) {
    if (to.modes.find(target)) {
      void to.switcher.switchTo(target, { source: 'marker', by, lang });
    } else {
      to.logger.warn({ target }, 'ignored [SWITCH] marker naming an unknown mode');
    }
  }
}
