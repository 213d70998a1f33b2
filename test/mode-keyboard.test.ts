import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modeMenu } from '../handlers/telegram/commands/mode-keyboard.js';
import type { StatusLine } from '../src/chat/status-lines.js';
import { loadConfig } from '../src/config.js';
import { loadsOnSwitch } from '../src/modes.js';

/**
 * The /mode menu's legend of 💤 says what a switch to each such mode does: it loads the model of a
 * llama mode whose start commands brainstem runs, and only waits for any other (a Claude mode, a
 * llama server someone else starts), as src/switcher.ts does.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'mode-menu-'));
writeFileSync(
  path.join(dir, 'brainstem.json'),
  JSON.stringify({
    defaultMode: 'assistant',
    modes: {
      big: { kind: 'llama', llamaModel: 'big' },
      shared: { kind: 'llama', llamaModel: 'shared' },
    },
    llama: { models: { big: { start: [['systemctl', 'start', 'llama-big']] }, shared: {} } },
  }),
);
const config = loadConfig({ BRAINSTEM_CONFIG: path.join(dir, 'brainstem.json'), HOME: dir }, dir);
const loads = (m: StatusLine['mode']) => loadsOnSwitch(config.llama, m);

function lines(ready: Record<string, boolean>, active = 'assistant'): StatusLine[] {
  return Object.entries(ready).map(([id, ok]) => {
    const mode = config.modes.find((m) => m.id === id);
    if (!mode) throw new Error(`no mode ${id}`);
    return {
      mode,
      active: id === active,
      ready: ok,
      detail: ok ? { en: 'ready', fr: 'prêt' } : { en: 'not loaded', fr: 'pas chargé' },
      summary: ok ? 'ready' : 'not loaded',
      checking: false,
    };
  });
}
const legend = (html: string) => html.split('\n').at(-1);

describe('the /mode legend', () => {
  it('says a switch loads the model only of the modes whose start commands brainstem runs', () => {
    const menu = modeMenu(lines({ big: false, shared: false, anklume: false, assistant: true }), 'en', loads);
    // It said "switching to it loads it" of every 💤 mode, a Claude one too, where nothing is loaded.
    expect(legend(menu.html)).toBe(
      '<i>💤 = not ready now. Switching to big loads its model. Switching to shared, anklume waits for it to be ready, or says why it is not.</i>',
    );
  });

  it('in French, and of the active mode only when a switch loads its model again', () => {
    const menu = modeMenu(lines({ big: false, assistant: false }, 'assistant'), 'fr', loads);
    expect(legend(menu.html)).toBe('<i>💤 = pas prêt. Choisir big charge son modèle.</i>');
  });

  it('has no legend when no mode is 💤', () => {
    const menu = modeMenu(lines({ big: true, assistant: true }), 'en', loads);
    expect(menu.html).not.toContain('💤');
  });
});
