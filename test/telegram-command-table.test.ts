/**
 * What derives from the one command table (handlers/telegram/commands/table.ts):
 * the lanes, the names brainstem keeps with the Bot API front on, the menus.
 * The commands themselves are driven through the Bot API emulator in
 * telegram-commands, telegram-tools, telegram-turns and front-inbound.
 */
import { describe, expect, it } from 'vitest';
import { commandMenus, commandNames, laneOf, menuIn } from '../handlers/telegram/commands/table.js';

describe('command table', () => {
  it('gives each command its lane under either name; unknown commands run with the messages', () => {
    expect([laneOf('stop'), laneOf('bstop')]).toEqual(['stop', 'stop']);
    expect(['start', 'help', 'bhelp', 'mode', 'usage', 'creds', 'status', 'bstatus'].map(laneOf)).toEqual(
      Array(8).fill('control'),
    );
    expect(['new', 'run', 'upgrade', 'unknown'].map(laneOf)).toEqual(Array(4).fill('chat'));
  });

  it('with the front on, keeps the renamed commands and gives /new and /start to OpenClaw; /run and /upgrade only when the tools run', () => {
    const withTools = commandNames(true, true);
    expect([...withTools].sort()).toEqual([
      'bhelp',
      'bstatus',
      'bstop',
      'creds',
      'mode',
      'run',
      'upgrade',
      'usage',
    ]);
    expect([...commandNames(true, false)].sort()).toEqual([
      'bhelp',
      'bstatus',
      'bstop',
      'creds',
      'mode',
      'usage',
    ]);
  });

  it('has the same menu in every language, without /start', () => {
    for (const front of [false, true]) {
      const [en, fr] = commandMenus(front);
      expect(en?.lang).toBe('');
      expect(fr?.lang).toBe('fr');
      expect(fr?.commands.map((c) => c.command)).toEqual(en?.commands.map((c) => c.command));
      expect(en?.commands).toEqual(menuIn('en', front));
      expect(en?.commands.some((c) => c.command === 'start')).toBe(false);
      for (const c of [...(en?.commands ?? []), ...(fr?.commands ?? [])]) expect(c.description).not.toBe('');
    }
    expect(menuIn('en', false).map((c) => c.command)).toEqual([
      'mode',
      'stop',
      'new',
      'run',
      'usage',
      'status',
      'creds',
      'upgrade',
      'help',
    ]);
  });
});
