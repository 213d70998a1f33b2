import { describe, expect, it } from 'vitest';
import { promptHtml } from '../handlers/telegram/approvals/view.js';
import { parseRunArgs } from '../handlers/telegram/commands/run-args.js';
import { escapeHtml } from '../handlers/telegram/format/render.js';
import { cleanOutput, confirmHtml, OutputTail, resultView } from '../handlers/telegram/views/tool.js';
import { parseTelegramHtml } from './fakes/telegram.js';

describe('/run arguments', () => {
  it('reads key=value pairs: bare JSON values typed, everything else a string', () => {
    expect(parseRunArgs('max=5 staged=true path=/srv/x.txt none=null', 'en')).toEqual({
      ok: true,
      input: { max: 5, staged: true, path: '/srv/x.txt', none: null },
    });
    expect(parseRunArgs('', 'en')).toEqual({ ok: true, input: {} });
  });

  it('keeps __proto__ an argument of its own, for the tool to refuse by name, not a silent prototype', () => {
    const parsed = parseRunArgs('__proto__={"max":5} path=/x', 'en');
    expect(parsed.ok && Object.keys(parsed.input)).toEqual(['__proto__', 'path']);
    expect(parsed.ok && Object.getPrototypeOf(parsed.input)).toBe(Object.prototype);
  });

  it('keeps quoted values as strings, spaces and all, including the quotes a phone types', () => {
    expect(
      parseRunArgs('path="/srv/my notes.txt" n="5" q=\'it is\' s=“curly one” e="say \\"hi\\""', 'en'),
    ).toEqual({
      ok: true,
      input: { path: '/srv/my notes.txt', n: '5', q: 'it is', s: 'curly one', e: 'say "hi"' },
    });
  });

  it('reads arrays and objects as JSON, spaces inside included', () => {
    expect(parseRunArgs('command=["ls", "-la", "a b"] instance=web env={"A": "1"}', 'en')).toEqual({
      ok: true,
      input: { command: ['ls', '-la', 'a b'], instance: 'web', env: { A: '1' } },
    });
  });

  it('takes one JSON object, also with curly quotes', () => {
    expect(parseRunArgs('{"path": "/etc/hosts"}', 'en')).toEqual({ ok: true, input: { path: '/etc/hosts' } });
    expect(parseRunArgs('{“path”: “/etc/hosts”}', 'en')).toEqual({ ok: true, input: { path: '/etc/hosts' } });
  });

  it('says what is wrong, naming the argument', () => {
    expect(parseRunArgs('5', 'en')).toEqual({
      ok: false,
      error: 'expected key=value or one JSON object, got “5”',
    });
    expect(parseRunArgs('max=1 max=2', 'en')).toEqual({ ok: false, error: 'max: given twice' });
    expect(parseRunArgs('path="/srv', 'en')).toEqual({ ok: false, error: 'path: unclosed quote "' });
    expect(parseRunArgs('command=["ls"', 'en')).toEqual({ ok: false, error: 'command: unclosed “[”' });
    expect(parseRunArgs('path=', 'en')).toMatchObject({
      ok: false,
      error: expect.stringMatching(/^path: no value/),
    });
    expect(parseRunArgs('{"a": 1', 'en')).toMatchObject({
      ok: false,
      error: expect.stringMatching(/not a valid JSON/),
    });
    expect(parseRunArgs('[1, 2]', 'en')).toMatchObject({
      ok: false,
      error: expect.stringMatching(/^expected key=value/),
    });
  });

  it('says it in French to a reader in French', () => {
    expect(parseRunArgs('5', 'fr')).toEqual({
      ok: false,
      error: 'attendu : clé=valeur ou un objet JSON, reçu « 5 »',
    });
    expect(parseRunArgs('max=1 max=2', 'fr')).toEqual({ ok: false, error: 'max : donné deux fois' });
    expect(parseRunArgs('path="/srv', 'fr')).toEqual({ ok: false, error: 'path : guillemet " non fermé' });
    expect(parseRunArgs('command=["ls"', 'fr')).toEqual({ ok: false, error: 'command : « [ » non fermé' });
    expect(parseRunArgs('path=', 'fr')).toMatchObject({
      error: expect.stringMatching(/^path : pas de valeur/),
    });
    expect(parseRunArgs('x=[1,', 'fr')).toMatchObject({
      error: expect.stringMatching(/^x : « \[ » non fermé/),
    });
    expect(parseRunArgs('x={"a":}', 'fr')).toMatchObject({
      error: expect.stringMatching(/^x : JSON non valide/),
    });
    expect(parseRunArgs('{"a": 1', 'fr')).toMatchObject({
      error: expect.stringMatching(/pas un objet JSON valide/),
    });
    expect(parseRunArgs('["a"]', 'fr')).toMatchObject({
      error: expect.stringMatching(/^attendu : clé=valeur/),
    });
    expect(parseRunArgs('[1]x', 'fr')).toMatchObject({ ok: false });
  });
});

describe('command output in a chat', () => {
  it('drops colours and control characters, and shows a redrawn line as it ended', () => {
    expect(cleanOutput('\u001b[32m✓ ok\u001b[0m\r\nprogress 10%\rprogress 100%\n\u0007bell')).toBe(
      '✓ ok\nprogress 100%\nbell',
    );
  });

  it('keeps the last lines, each cut to a readable length', () => {
    const tail = new OutputTail();
    for (let i = 1; i <= 40; i++) tail.push(`line ${i}\n`);
    tail.push(`${'x'.repeat(500)}\n`);
    const lines = tail.lines();
    expect(lines).toHaveLength(15);
    expect(lines[0]).toBe('line 27');
    expect(lines.at(-1)).toMatch(/^x{159}…$/);
  });

  it('never cuts inside an emoji (Telegram refuses half of one): a long line, the start of the tail kept', () => {
    const tail = new OutputTail();
    tail.push(`${'x'.repeat(158)}🚀 deployed\n`);
    expect(tail.lines()).toEqual([`${'x'.repeat(158)}…`]);
    // 8000 characters are kept: the first of them would be the second half of 🚀.
    const kept = new OutputTail();
    kept.push(`🚀${'y'.repeat(7_999)}`);
    expect(kept.lines()).toEqual([`${'y'.repeat(159)}…`]);
  });

  it('shows the end of a long output, never from inside an emoji', () => {
    // No line break near the start of the last 3000 characters: the cut is kept as it falls.
    const output = `${'y'.repeat(500)}🚀${'z'.repeat(2_999)}`;
    const view = resultView(
      { tool: 'make', input: {} },
      { tool: 'make', ok: true, output, durationMs: 5, exitCode: 0, truncated: false },
      undefined,
      'en',
    );
    expect(view.html).toContain(`<pre>${'z'.repeat(2_999)}</pre>`);
    expect(view.document?.text).toBe(`${output}\n`);
  });
});

describe('the confirmation question of a mutating call', () => {
  /** The question as it ends when cancelled by someone with the longest first name Telegram allows. */
  const closed = (html: string) =>
    `${html}\n\n<b>${escapeHtml(`✖️ Annulé (${'N'.repeat(64)}) : rien n’a été lancé.`)}</b>`;
  const halfEmoji = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

  it('shows a call that fits whole, without a word about cutting', () => {
    expect(
      parseTelegramHtml(confirmHtml({ tool: 'make_target', input: { target: 'deploy' } }, 'en')).text,
    ).toBe('⚙️ [proxy] ❓ Run make deploy? It changes things.');
  });

  it('fits one message with its outcome whatever the input, escaped, and says in the reader’s language how much it leaves out', () => {
    for (const prompt of [`<b>&amp; ${'line\n'.repeat(3_000)}`, '🚀'.repeat(5_000), '&'.repeat(9_000)]) {
      const call = `claude_code ${JSON.stringify({ prompt })}`;
      for (const [lang, note] of [
        [
          'en',
          /\? It changes things\.\nOnly the start of the call is shown: (\d+) more characters are not\. Confirm runs all of it\.$/,
        ],
        [
          'fr',
          / \? Cela modifie des choses\.\nSeul le début de l’appel est affiché : (\d+) caractères de plus ne le sont pas\. Confirmer lance l’appel en entier\.$/,
        ],
      ] as const) {
        const html = confirmHtml({ tool: 'claude_code', input: { prompt } }, lang);
        // Parsed as Telegram does: HTML it takes, and the length it counts.
        expect(parseTelegramHtml(closed(html)).text.length).toBeLessThanOrEqual(4096);
        expect(halfEmoji.test(html)).toBe(false);
        const text = parseTelegramHtml(html).text;
        const shown = /❓ (?:Run|Lancer) ([\s\S]*)…/.exec(text)?.[1] ?? '';
        expect(shown.length).toBeGreaterThan(3_500);
        expect(call.startsWith(shown)).toBe(true);
        expect(Number(note.exec(text)?.[1])).toBe(call.length - shown.length);
      }
    }
  });
});

describe('the approval question of a Claude tool', () => {
  it('fits one message with its outcome whatever the request, escaped, and says in French how much of the summary it leaves out', () => {
    const summary = `<script>&${'rm -rf /tmp/x; '.repeat(600)}`;
    const html = promptHtml(
      {
        id: 'r1',
        sessionKey: `openai:${'k'.repeat(200)}`,
        mode: 'assistant',
        tool: `mcp__${'t'.repeat(5_000)}`,
        input: { command: summary, description: `<b>${'why '.repeat(100)}` },
        summary,
      },
      'fr',
      true,
    );
    const outcome = `\n\n<b>${escapeHtml(`✅ Autorisé pour cette session par ${'N'.repeat(64)}.`)}</b>`;
    expect(parseTelegramHtml(html + outcome).text.length).toBeLessThanOrEqual(4096);
    const text = parseTelegramHtml(html).text;
    const shown =
      /\n([\s\S]*)…\nSeul le début est affiché : (\d+) caractères de plus ne le sont pas\. Autoriser autorise le tout\.\n/.exec(
        text,
      );
    expect(summary.startsWith(shown?.[1] ?? '-')).toBe(true);
    expect(Number(shown?.[2])).toBe(summary.length - (shown?.[1]?.length ?? 0));
    expect(shown?.[1]?.length).toBeGreaterThan(3_000);
  });
});
