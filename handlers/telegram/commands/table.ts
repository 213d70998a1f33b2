import type { Api, Bot } from 'grammy';
import type { BotCommand, LanguageCode } from 'grammy/types';
import type { Lang } from '../../../src/i18n.js';
import type { Logger } from '../../../src/logger.js';
import type { BotDeps } from '../deps.js';
import { controlHandlers, registerModeButtons } from './control.js';
import { type BotCommandHandler, commandEnv, guarded } from './handler.js';
import { runCommand, type ToolCommand, type ToolCommandHandler, upgradeCommand } from './tools.js';

/**
 * Every bot command, once. The menu (setMyCommands, in every language, and
 * the front's merged menu), /help's list, the lane a command runs in
 * (index.ts), what the Bot API front hands to brainstem (route/inbound-split)
 * and the handler registrations all derive from this table: adding a command
 * is one entry here plus its handler.
 */

/**
 * Where a command runs among its chat's updates (index.ts): `stop` alone, so
 * it is answered at once; `control` beside the messages, with the buttons
 * (read-only answers); `chat` in order with the messages (what must not
 * overtake an answer being written).
 */
export type Lane = 'stop' | 'control' | 'chat';

interface CommandBase {
  name: string;
  /** The menu line in each language; none: not in the menu (Telegram's start button). */
  menu?: Record<Lang, string>;
  lane: Lane;
  /**
   * Its name while the Bot API front is on, when OpenClaw has a command of
   * the same name (OpenClaw's acts on its own session); null: OpenClaw's
   * alone then. Unset: brainstem's under its own name. See the README's table.
   */
  front?: string | null;
}

/** `bot`: answered by the bot itself; `tools`: through the tools (and only when they run). */
type CommandEntry = CommandBase &
  ({ part: 'bot'; handler: BotCommandHandler } | { part: 'tools'; handler: ToolCommandHandler });

const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'mode',
    menu: { en: 'Show or switch the brain (/mode local)', fr: 'Voir ou changer de cerveau (/mode local)' },
    lane: 'control',
    part: 'bot',
    handler: controlHandlers.mode,
  },
  {
    name: 'stop',
    menu: { en: 'Interrupt the answer in progress', fr: 'Interrompre la réponse en cours' },
    lane: 'stop',
    front: 'bstop',
    part: 'bot',
    handler: controlHandlers.stop,
  },
  {
    name: 'new',
    menu: { en: 'Start a fresh conversation', fr: 'Commencer une nouvelle conversation' },
    lane: 'chat',
    front: null,
    part: 'bot',
    handler: controlHandlers.new,
  },
  {
    name: 'run',
    menu: {
      en: 'Run a tool or shortcut (/run tests, /run git_log max=5)',
      fr: 'Lancer un outil ou un raccourci (/run tests, /run git_log max=5)',
    },
    lane: 'chat',
    part: 'tools',
    handler: runCommand,
  },
  {
    name: 'usage',
    menu: { en: 'Consumption (/usage 30d, /usage chart)', fr: 'Consommation (/usage 30d, /usage chart)' },
    lane: 'control',
    part: 'bot',
    handler: controlHandlers.usage,
  },
  {
    name: 'status',
    menu: { en: 'Modes, route, uptime', fr: 'Modes, route, disponibilité' },
    lane: 'control',
    front: 'bstatus',
    part: 'bot',
    handler: controlHandlers.status,
  },
  {
    name: 'creds',
    menu: { en: 'Claude credentials state', fr: 'État des identifiants Claude' },
    lane: 'control',
    part: 'bot',
    handler: controlHandlers.creds,
  },
  {
    name: 'upgrade',
    menu: { en: 'Update brainstem from its git remote', fr: 'Mettre à jour brainstem depuis son dépôt git' },
    lane: 'chat',
    part: 'tools',
    handler: upgradeCommand,
  },
  {
    name: 'help',
    menu: { en: 'What this bot does', fr: 'Ce que fait ce bot' },
    lane: 'control',
    front: 'bhelp',
    part: 'bot',
    handler: controlHandlers.help,
  },
  { name: 'start', lane: 'control', front: null, part: 'bot', handler: controlHandlers.start },
];

/** The name a command is answered under; undefined when, with the front on, it is OpenClaw's. */
function servedName(entry: CommandEntry, front: boolean): string | undefined {
  if (!front || entry.front === undefined) return entry.name;
  return entry.front ?? undefined;
}

/**
 * The name brainstem answers a command of this table under in this set-up: with the front on,
 * `/bstop` for its `/stop` (`/stop` is then OpenClaw's). Its texts name commands by this, so that
 * what they tell the user to type reaches brainstem.
 */
export function servedAs(name: string, front: boolean): string {
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) throw new Error(`no bot command ${name} in the table`);
  const served = servedName(entry, front);
  if (served === undefined) throw new Error(`bot command ${name} is OpenClaw's with the front on`);
  return served;
}

/** The lane of a command word, under either of its names; an unknown command runs with the messages. */
export function laneOf(command: string): Lane {
  return COMMANDS.find((c) => c.name === command || c.front === command)?.lane ?? 'chat';
}

/** The commands brainstem answers in this set-up; with the front on, every other command goes to OpenClaw. */
export function commandNames(front: boolean, toolsRun: boolean): Set<string> {
  return new Set(
    COMMANDS.flatMap((c) => (c.part === 'tools' && !toolsRun ? [] : (servedName(c, front) ?? []))),
  );
}

/** The command menu, in English (the default) and French. */
export function commandMenus(front: boolean): { lang: string; commands: BotCommand[] }[] {
  return [
    { lang: '', commands: menuIn('en', front) },
    { lang: 'fr', commands: menuIn('fr', front) },
  ];
}

/** The command menu in one language, as /help lists it. */
export function menuIn(lang: Lang, front: boolean): BotCommand[] {
  return COMMANDS.flatMap((c) => {
    const command = servedName(c, front);
    return c.menu && command ? [{ command, description: c.menu[lang] }] : [];
  });
}

/** Registers the command menu straight at Telegram (no front). */
export async function publishCommands(api: Api, logger: Logger): Promise<void> {
  try {
    for (const { lang, commands } of commandMenus(false)) {
      await api.setMyCommands(commands, lang ? { language_code: lang as LanguageCode } : {});
    }
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'setMyCommands failed; the command menu may be stale');
  }
}

/** The bot's own commands (and the mode buttons), each under the name it is answered by in this set-up. */
export function registerCommands(bot: Bot, deps: BotDeps): void {
  const front = deps.front !== undefined;
  for (const entry of COMMANDS) {
    const served = servedName(entry, front);
    if (entry.part !== 'bot' || !served) continue;
    const { name, handler } = entry;
    // grammY's `command` reads a message's text only (its `entities`, never `caption_entities`):
    // a photo, file or album captioned "/new" goes to the brain whole, never dropped by a command run.
    bot.command(served, (ctx) =>
      guarded(ctx, deps.logger, name, () =>
        handler(
          ctx,
          commandEnv(ctx, deps, (lang) => menuIn(lang, front)),
        ),
      ),
    );
  }
  registerModeButtons(bot, deps);
}

/** The commands answered through the tools, for registerToolCommands. */
export function toolCommands(front: boolean): ToolCommand[] {
  return COMMANDS.flatMap((c) => {
    const served = servedName(c, front);
    return c.part === 'tools' && served ? [{ name: c.name, served, handler: c.handler }] : [];
  });
}
