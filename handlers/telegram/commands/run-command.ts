import { BrainstemError, sayError } from '../../../src/errors.js';
import { type Lang, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { shorten } from '../../../src/text.js';
import type { ResolvedShortcut, Tools } from '../../../src/tools/index.js';
import { escapeHtml } from '../format/render.js';
import { type CallRequest, callText } from '../views/tool.js';
import { parseRunArgs } from './run-args.js';

/** A call ready to run, and whether it must be confirmed first. */
export interface ResolvedCall extends CallRequest {
  mutating: boolean;
}

/** The call, or what is wrong with the request in a sentence the user can act on (plain text). */
export type Resolution = { ok: true; call: ResolvedCall } | { ok: false; error: string };

/** A shortcut word, unless its tool refuses it with this configuration: then what to configure. */
export function fromShortcut(s: ResolvedShortcut, lang: Lang): Resolution {
  if (s.refusal) {
    return {
      ok: false,
      error: t(
        lang,
        `“${s.word}” cannot run: ${s.refusal.message}`,
        `« ${s.word} » ne peut pas se lancer : ${sayError(s.refusal, 'fr')}`,
      ),
    };
  }
  return { ok: true, call: { word: s.word, tool: s.tool, input: s.input, mutating: s.mutating } };
}

/**
 * `/run <shortcut|tool> [args]`: a shortcut (its words as a whole, so "git
 * status" works), else a tool with arguments (see run-args.ts), validated and
 * authorized by the registry, whose errors name the field.
 */
export function resolveRun(tools: Tools, text: string, lang: Lang): Resolution {
  const whole = text.trim();
  const shortcut = tools.resolveShortcut(whole);
  if (shortcut) return fromShortcut(shortcut, lang);
  const [, name = '', rest = ''] = /^(\S+)\s*([\s\S]*)$/.exec(whole) ?? [];
  if (tools.registry.names().includes(name)) {
    const args = parseRunArgs(rest, lang);
    if (!args.ok) return { ok: false, error: `${name}${t(lang, ':', ' :')} ${args.error}` };
    try {
      const p = tools.registry.prepare(name, args.input);
      return { ok: true, call: { tool: name, input: p.input, mutating: p.mutating } };
    } catch (err) {
      return {
        ok: false,
        error: err instanceof BrainstemError ? sayError(err, lang) : (err as Error).message || String(err),
      };
    }
  }
  const word = tools.resolveShortcut(name);
  if (word) {
    // Arguments could turn a shortcut known to be harmless into a call that is not: only its tool takes them.
    return {
      ok: false,
      error: t(
        lang,
        `“${word.word}” is a shortcut and takes no arguments; to pass some, name its tool: /run ${word.tool} key=value…`,
        `« ${word.word} » est un raccourci, sans arguments ; pour en passer, nommez son outil : /run ${word.tool} clé=valeur…`,
      ),
    };
  }
  // The name is whatever was typed: shown back short, so the reply always fits.
  const typed = shorten(name, 80);
  return {
    ok: false,
    error: t(
      lang,
      `Unknown tool or shortcut “${typed}”. Send /run alone for the list.`,
      `Outil ou raccourci inconnu : « ${typed} ». Envoyez /run seul pour la liste.`,
    ),
  };
}

/** Bare /run: the shortcuts (what each runs, which ask first, which are not configured) and the tools. */
export function runListHtml(tools: Tools, lang: Lang): string {
  const shortcuts = tools.shortcuts.list().map((info) => {
    const s = tools.resolveShortcut(info.word);
    const aliases = info.aliases.length > 0 ? ` (${escapeHtml(info.aliases.slice(0, 3).join(', '))})` : '';
    const state = s?.refusal
      ? t(lang, ' <i>not configured</i>', ' <i>non configuré</i>')
      : s?.mutating
        ? ' 🔒'
        : '';
    return `• <b>${escapeHtml(info.word)}</b>${aliases} → <code>${escapeHtml(callText(info))}</code>${state}`;
  });
  const names = tools.registry
    .list()
    .map((x) => `<code>${escapeHtml(x.name)}</code>${x.mutating === true ? ' 🔒' : ''}`);
  return [
    t(
      lang,
      `${PROXY_TAG} <b>/run</b> a shortcut or a tool (🔒 asks for confirmation first).`,
      `${PROXY_TAG} <b>/run</b> un raccourci ou un outil (🔒 demande confirmation d’abord).`,
    ),
    '',
    `<b>${t(lang, 'Shortcuts', 'Raccourcis')}</b> ${t(lang, '(also as bare words)', '(aussi en mots seuls)')}`,
    ...shortcuts,
    '',
    `<b>${t(lang, 'Tools', 'Outils')}</b>`,
    names.join(', '),
    '',
    t(
      lang,
      'Arguments: <code>/run git_log max=5</code>, <code>/run read_file path="/srv/my notes.txt"</code>, or one JSON object: <code>/run read_file {"path": "/etc/hosts"}</code>.',
      'Arguments : <code>/run git_log max=5</code>, <code>/run read_file path="/srv/mes notes.txt"</code>, ou un objet JSON : <code>/run read_file {"path": "/etc/hosts"}</code>.',
    ),
  ].join('\n');
}
