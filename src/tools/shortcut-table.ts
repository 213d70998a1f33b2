import { fold } from '../intents.js';
import type { ShortcutConfig, ToolsConfig } from './config.js';
import { inputIssue, isToolName, TOOL_INPUTS, type ToolName, unknownTool } from './inputs.js';

/**
 * Short action words (French and English) answered with a tool call instead of
 * a brain, as the original proxy did: `deploy`, `tests`, `git` … Configurable:
 * tools.shortcuts adds words, overrides them, or removes a built-in one (false).
 * The table and its check, apart from answering the words (shortcuts.ts): loadConfig
 * checks the configured ones before anything starts.
 */

/**
 * The original proxy's words. make targets work once allowed in tools.make.targets. None claims to
 * only read: brainstem cannot know what a target's recipe does (a `check` may format, a `smoke` deploy),
 * so each asks first like make_target itself; an owner who knows one only reads says so with
 * tools.shortcuts.<word>.mutating: false.
 */
const BUILT_IN: Record<string, ShortcutConfig & { tool: ToolName }> = {
  deploy: {
    tool: 'make_target',
    input: { target: 'deploy' },
    aliases: ['deploie', 'deployer', 'deploiement', 'deployment'],
  },
  sync: {
    tool: 'make_target',
    input: { target: 'sync' },
    aliases: ['synchronise', 'synchroniser', 'synchro'],
  },
  lint: { tool: 'lint', input: {}, aliases: ['linter', 'lints'] },
  test: { tool: 'run_tests', input: {}, aliases: ['tests', 'teste', 'tester', 'run tests'] },
  check: {
    tool: 'make_target',
    input: { target: 'check' },
    aliases: ['verifie', 'verifier', 'verif', 'checks'],
  },
  report: { tool: 'usage', input: { since: '7d' }, aliases: ['rapport'] },
  git: { tool: 'git_status', input: {}, aliases: ['git status', 'statut git', 'etat git'] },
  'snap-list': {
    tool: 'make_target',
    input: { target: 'snap-list' },
    aliases: ['snap list', 'snapshots', 'liste des snapshots'],
  },
  smoke: {
    tool: 'make_target',
    input: { target: 'smoke' },
    aliases: ['smoke test', 'smoke-test'],
  },
  audit: { tool: 'audit', input: {}, aliases: ['journal'] },
};

export interface ShortcutInfo {
  word: string;
  aliases: string[];
  tool: string;
  input: Record<string, unknown>;
  description?: string;
}

export type ShortcutEntry = ShortcutInfo & { mutating?: boolean };

/** The shortcuts in force: the built-in ones with tools.shortcuts over them, by word and alias (folded). */
export function shortcutTable(configured: ToolsConfig['shortcuts']): {
  byWord: Map<string, ShortcutEntry>;
  all: ShortcutInfo[];
  /** Words two shortcuts claim, as `tools.shortcuts.<word>: …` lines. */
  clashes: string[];
} {
  const byWord = new Map<string, ShortcutEntry>();
  const all: ShortcutInfo[] = [];
  const clashes: string[] = [];
  for (const [word, s] of Object.entries({ ...BUILT_IN, ...configured })) {
    if (s === false) continue;
    const info = { word, aliases: s.aliases, tool: s.tool, input: s.input, description: s.description };
    all.push(info);
    for (const name of [word, ...s.aliases]) {
      const key = fold(name);
      const other = byWord.get(key);
      if (other && other.word !== word)
        clashes.push(`tools.shortcuts.${word}: "${name}" is already a shortcut for ${other.word}`);
      byWord.set(key, { ...info, mutating: s.mutating });
    }
  }
  return { byWord, all, clashes };
}

/**
 * What is wrong with the shortcuts, one `tools.shortcuts.<word>…` line each: a tool that does not
 * exist, input its tool refuses, a word two shortcuts claim. Built from the `tools` section alone,
 * so loadConfig names these with the rest of the file's problems, and doctor with them, before
 * anything starts. Whether the configuration lets the tool run (a make target not allowed) is
 * the tool's own answer when the word is used.
 */
export function shortcutProblems(tools: ToolsConfig): string[] {
  const problems: string[] = [];
  // The configured words only: a built-in one's input is the code's, the same with every config
  // (test/tools-shortcuts.test.ts checks them), and building its schema would cost every start.
  for (const [word, s] of Object.entries(tools.shortcuts)) {
    if (s === false) continue;
    const where = `tools.shortcuts.${word}`;
    if (!isToolName(s.tool)) {
      problems.push(`${where}.tool: ${unknownTool(s.tool, Object.keys(TOOL_INPUTS)).message}`);
      continue;
    }
    const parsed = TOOL_INPUTS[s.tool](tools).safeParse(s.input);
    if (!parsed.success)
      problems.push(`${where}.input: ${inputIssue(s.tool, parsed.error.issues[0]).message}`);
  }
  return [...problems, ...shortcutTable(tools.shortcuts).clashes];
}
