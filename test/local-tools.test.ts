import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { recordingLogger } from './helpers/logs.js';
import { startTestService, type TestService } from './helpers/service.js';
import { startHarness } from './telegram-harness.js';

/** brainstem's tools as functions the local model calls when its client brought none. */
let llama: FakeLlama;
let svc: TestService;
let repo: string;

beforeAll(async () => {
  repo = mkdtempSync(path.join(tmpdir(), 'bst-localtools-'));
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' });
  git('init', '-q', '-b', 'main');
  writeFileSync(path.join(repo, 'notes.txt'), 'hello\n');
  llama = await startFakeLlama();
  svc = await startTestService({
    config: {
      defaultMode: 'local',
      server: { modeTag: false },
      llama: { baseUrl: llama.baseUrl },
      tools: { git: { repo }, make: { dir: repo, targets: ['deploy'] } },
    },
    parts: { tools: true },
  });
});
afterAll(async () => {
  await svc?.close();
  await llama?.close();
});

describe('local brain with brainstem tools', () => {
  it('calls a read-only tool, gets its result, and answers', async () => {
    llama.script((_body, n) =>
      n === 0
        ? { chunks: [{ toolCall: { index: 0, id: 'c1', name: 'git_status', arguments: '{}' } }] }
        : { chunks: ['One untracked file: notes.txt'] },
    );
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'what is the state of the repo?' }],
    });
    expect(r.choices[0]?.message.content).toBe('One untracked file: notes.txt');
    const [first, second] = llama.requests.filter((q) => q.path === '/v1/chat/completions').slice(-2);
    const offered = ((first?.body ?? {}) as { tools: { function: { name: string } }[] }).tools.map(
      (t) => t.function.name,
    );
    expect(offered).toContain('git_status');
    // Only read-only tools: a model cannot be asked to confirm a deploy mid-answer.
    expect(offered).not.toContain('make_target');
    const msgs = (
      (second?.body ?? {}) as { messages: { role: string; content: string; tool_call_id?: string }[] }
    ).messages;
    const toolMsg = msgs.find((m) => m.role === 'tool');
    expect(toolMsg?.tool_call_id).toBe('c1');
    expect(toolMsg?.content).toContain('notes.txt');
    const audit = svc.service.core.db
      .prepare("SELECT caller, ok FROM audit WHERE tool = 'git_status' ORDER BY id DESC LIMIT 1")
      .get() as { caller: string; ok: number };
    expect(audit.caller).toMatch(/^brain:local:/);
    expect(audit.ok).toBe(1);
  });

  it('passes the client tools through untouched when the client brings its own', async () => {
    llama.script(() => ({
      chunks: [{ toolCall: { index: 0, id: 'c2', name: 'read', arguments: '{"path":"x"}' } }],
    }));
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'read x' }],
      tools: [{ type: 'function', function: { name: 'read', parameters: { type: 'object' } } }],
    });
    expect(r.choices[0]?.message.tool_calls?.[0]).toMatchObject({ id: 'c2', function: { name: 'read' } });
    expect(r.choices[0]?.finish_reason).toBe('tool_calls');
  });

  it('offers none of its own tools to a client that said tool_choice "none"', async () => {
    llama.script(() => ({ chunks: ['abc, summarised'] }));
    const r = await svc.client.chat.completions.create({
      model: 'local',
      tool_choice: 'none',
      messages: [{ role: 'user', content: 'summarise this text without looking anything up: abc' }],
    });
    expect(r.choices[0]?.message.content).toBe('abc, summarised');
    const sent = llama.requests.filter((q) => q.path === '/v1/chat/completions').at(-1)?.body as {
      tools?: unknown;
      tool_choice?: unknown;
    };
    expect([sent.tools, sent.tool_choice]).toEqual([undefined, undefined]);
  });

  it('adds up the rounds: the answer’s usage is the whole turn’s, and its words are paragraphs apart', async () => {
    // The first round of each turn calls a tool; the one after its result answers.
    llama.script((body) =>
      !(body as { messages: { role: string }[] }).messages.some((m) => m.role === 'tool')
        ? {
            chunks: [
              'Let me look.',
              { toolCall: { index: 0, id: 'c3', name: 'git_status', arguments: '{}' } },
            ],
            usage: { prompt_tokens: 100, completion_tokens: 10 },
          }
        : { chunks: ['Clean.'], usage: { prompt_tokens: 200, completion_tokens: 3 } },
    );
    for (const stream of [false, true] as const) {
      const r = await svc.client.chat.completions.create({
        model: 'local',
        messages: [{ role: 'user', content: `state of the repo? ${stream}` }],
        stream,
        ...(stream ? { stream_options: { include_usage: true } } : {}),
      });
      let content = '';
      let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
      if (stream) {
        for await (const c of r as AsyncIterable<{
          choices: { delta: { content?: string } }[];
          usage?: typeof usage;
        }>) {
          content += c.choices[0]?.delta.content ?? '';
          usage = c.usage ?? usage;
        }
      } else {
        const whole = r as { choices: { message: { content: string } }[]; usage: typeof usage };
        content = whole.choices[0]?.message.content ?? '';
        usage = whole.usage;
      }
      expect(content).toBe('Let me look.\n\nClean.');
      expect(usage).toMatchObject({ prompt_tokens: 300, completion_tokens: 13 });
    }
  });

  it('answers in words once the tool rounds are spent: no tool offered on the last, a call made there said and not run, never a client-facing tool_calls', async () => {
    llama.script(() => ({
      chunks: [{ toolCall: { index: 0, id: 'again', name: 'git_status', arguments: '{}' } }],
    }));
    const before = llama.requests.filter((q) => q.path === '/v1/chat/completions').length;
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'keep looking' }],
    });
    expect(r.choices[0]?.finish_reason).toBe('stop');
    expect(r.choices[0]?.message.tool_calls).toBeUndefined();
    // The call of the last round is not run, and the answer says so instead of coming back empty.
    expect(r.choices[0]?.message.content).toBe(
      '⚙️ [proxy] The model called git_status after 5 rounds of tools, the most one answer may take: not run. Ask again for it to go on.',
    );
    const rounds = llama.requests.filter((q) => q.path === '/v1/chat/completions').slice(before);
    const offered = rounds.map((q) => ((q.body ?? {}) as { tools?: unknown[] }).tools?.length ?? 0);
    expect(offered.at(-1)).toBe(0);
    expect(offered.slice(0, -1).every((n) => n > 0)).toBe(true);
  });

  it('runs no call of a round cut at the output limit: its arguments are cut too, and the answer says so', async () => {
    llama.script(() => ({
      chunks: ['Let me look.', { toolCall: { index: 0, id: 'cut', name: 'git_log', arguments: '{"ma' } }],
      finishReason: 'length',
    }));
    const before = llama.requests.filter((q) => q.path === '/v1/chat/completions').length;
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'what changed lately?' }],
    });
    // One request: no second round fed the call's cut arguments back as an error the model cannot read.
    expect(llama.requests.filter((q) => q.path === '/v1/chat/completions').length - before).toBe(1);
    expect(r.choices[0]?.finish_reason).toBe('length');
    expect(r.choices[0]?.message.tool_calls).toBeUndefined();
    expect(r.choices[0]?.message.content).toBe(
      'Let me look.\n\n⚙️ [proxy] The model’s call of git_log was cut at its output limit (max_tokens, llama-server’s --n-predict or the end of its context): not run.',
    );
  });
});

describe('a long tool result', () => {
  it('keeps its head and its tail, the middle cut with a marker: a failing test run’s summary and exit code reach the model', async () => {
    // Far more than the model may read back: the end says the run failed.
    writeFileSync(
      path.join(repo, 'noisy-tests.cjs'),
      "for (let i = 0; i < 10000; i++) console.log('test ' + i + ' ok'); console.log('SUMMARY: 3 failed'); process.exitCode = 1;",
    );
    const s = await startTestService({
      config: {
        llama: { baseUrl: llama.baseUrl },
        tools: {
          tests: { argv: [process.execPath, path.join(repo, 'noisy-tests.cjs')], cwd: repo, readOnly: true },
        },
        modes: { local: { kind: 'llama', description: 'runs the tests', allowedTools: ['run_tests'] } },
      },
      parts: { tools: true },
    });
    try {
      llama.script((body) =>
        (body as { messages: { role: string }[] }).messages.some((m) => m.role === 'tool')
          ? { chunks: ['They fail.'] }
          : { chunks: [{ toolCall: { index: 0, id: 'tests', name: 'run_tests', arguments: '{}' } }] },
      );
      await s.client.chat.completions.create({
        model: 'local',
        messages: [{ role: 'user', content: 'do the tests pass?' }],
      });
      const sent = llama.requests.filter((q) => q.path === '/v1/chat/completions').at(-1)?.body as {
        messages: { role: string; content: string }[];
      };
      const result = sent.messages.find((m) => m.role === 'tool')?.content ?? '';
      expect(result.length).toBeLessThan(8_100);
      expect(result.startsWith('test 0 ok\ntest 1 ok\n')).toBe(true);
      expect(result).toMatch(/\n\[… \d+ characters omitted …\]\n/);
      expect(result.endsWith('test 9999 ok\nSUMMARY: 3 failed\n\n\nExit code 1.')).toBe(true);
    } finally {
      llama.script();
      await s.close();
    }
  });
});

describe('in a Telegram chat', () => {
  it('the notice of a round names a call of a tool the model was not offered as not run, not as a tool at work', async () => {
    const h = await startHarness({
      llama,
      parts: { bot: true, tools: true },
      config: {
        modes: { local: { kind: 'llama', description: 'reads the repo', allowedTools: ['git_status'] } },
        tools: { git: { repo }, make: { dir: repo, targets: ['deploy'] } },
      },
    });
    try {
      llama.script((body) =>
        (body as { messages: { role: string }[] }).messages.some((m) => m.role === 'tool')
          ? { chunks: ['Looked.'] }
          : {
              chunks: [
                { toolCall: { index: 0, id: 'look', name: 'git_status', arguments: '{}' } },
                { toolCall: { index: 1, id: 'ship', name: 'make_target', arguments: '{"target":"deploy"}' } },
              ],
            },
      );
      const user = h.tg.user(116);
      user.says('look, then deploy');
      const answer = await h.tg.waitFor(() =>
        h.tg.botMessages(user.chatId).find((m) => m.text.endsWith('Looked.')),
      );
      // A deploy shown as 🔧 make_target reads as one that ran, whatever the model says next.
      expect(answer.text).toBe(
        '⚙️ [proxy] 🔧 git_status, 🚫 make_target (🚫: not offered to the model, not run)\n\nLooked.',
      );
      expect(h.service.tools?.registry.recentAudit(10, 'make_target')).toEqual([]);
      expect(
        h.logs.find((l) => l.msg === 'the model called tools it was not offered, not run: make_target'),
      ).toMatchObject({ mode: 'local', tools: ['make_target'] });
    } finally {
      llama.script();
      await h.close();
    }
  });
});

describe('a round of many calls', () => {
  it('runs the first 8 and answers each call beyond with a result that says it was not run and why; the chat’s notice says so', async () => {
    const h = await startHarness({
      llama,
      parts: { bot: true, tools: true },
      config: {
        modes: { local: { kind: 'llama', description: 'reads the repo', allowedTools: ['git_status'] } },
        tools: { git: { repo } },
      },
    });
    try {
      // A looping model: thirty calls in one round.
      llama.script((body) =>
        (body as { messages: { role: string }[] }).messages.some((m) => m.role === 'tool')
          ? { chunks: ['Looked.'] }
          : {
              chunks: Array.from({ length: 30 }, (_, i) => ({
                toolCall: { index: i, id: `many${i}`, name: 'git_status', arguments: '{}' },
              })),
            },
      );
      const user = h.tg.user(117);
      user.says('look thirty times');
      const answer = await h.tg.waitFor(() =>
        h.tg.botMessages(user.chatId).find((m) => m.text.endsWith('Looked.')),
      );
      expect(answer.text).toBe(
        `⚙️ [proxy] ${Array(8).fill('🔧 git_status').join(', ')}; 22 more calls (git_status) not run: at most 8 run in one round\n\nLooked.`,
      );
      expect(h.service.tools?.registry.recentAudit(100, 'git_status')).toHaveLength(8);
      // Every call has its result: none dropped, the ones beyond told why they were not run.
      const sent = llama.requests.filter((q) => q.path === '/v1/chat/completions').at(-1)?.body as {
        messages: { role: string; content: string; tool_call_id?: string }[];
      };
      const results = sent.messages.filter((m) => m.role === 'tool');
      expect(results.map((m) => m.tool_call_id)).toEqual(Array.from({ length: 30 }, (_, i) => `many${i}`));
      expect(results.slice(0, 8).every((m) => m.content.includes('notes.txt'))).toBe(true);
      expect(
        results.slice(8).every((m) => m.content.startsWith('Error: not run. You made 30 tool calls')),
      ).toBe(true);
      expect(h.logs.find((l) => /30 tool calls in one round/.test(String(l.msg)))).toMatchObject({
        mode: 'local',
        calls: 30,
      });
    } finally {
      llama.script();
      await h.close();
    }
  });
});

describe('tool results that do not fit the model’s context', () => {
  it('are said to be the cause, with what helps, in the user’s language; not a new conversation, which would call the same tools', async () => {
    writeFileSync(
      path.join(repo, 'long-tests.cjs'),
      "for (let i = 0; i < 5000; i++) console.log('test ' + i + ' ok'); console.log('SUMMARY: all passed');",
    );
    const h = await startHarness({
      llama,
      parts: { bot: true, tools: true },
      config: {
        modes: { local: { kind: 'llama', description: 'runs the tests', allowedTools: ['run_tests'] } },
        tools: {
          tests: { argv: [process.execPath, path.join(repo, 'long-tests.cjs')], cwd: repo, readOnly: true },
        },
      },
    });
    // The question fits; with two results of 8,000 characters each, the next round does not.
    llama.setContext(3000);
    try {
      llama.script((body) =>
        (body as { messages: { role: string }[] }).messages.some((m) => m.role === 'tool')
          ? { chunks: ['They pass.'] }
          : {
              chunks: [
                { toolCall: { index: 0, id: 'unit', name: 'run_tests', arguments: '{}' } },
                { toolCall: { index: 1, id: 'again', name: 'run_tests', arguments: '{}' } },
              ],
            },
      );
      const said = async (user: ReturnType<typeof h.tg.user>, pattern: RegExp) => {
        user.says('do the tests pass?');
        return (await h.tg.waitFor(() => h.tg.botMessages(user.chatId).find((m) => pattern.test(m.text))))
          .text;
      };
      // The prompt's size and the server's address vary from run to run.
      const shown = (text: string) =>
        text
          .replace(/http:\/\/\S+\/completions/, 'URL')
          .replace(/\((\d+) (tokens|jetons)\) (exceeds|dépasse)/, '(N $2) $3');
      expect(shown(await said(h.tg.user(118), /⚠️/))).toBe(
        '⚙️ [proxy] 🔧 run_tests, 🔧 run_tests\n\n⚙️ [proxy] ⚠️ the results of the tools the model called for this answer did not fit its context: with them the conversation (N tokens) exceeds the available context size of the local model at URL (3000 tokens). Give llama-server a larger --ctx-size, or ask for something narrower (one file, one test, fewer log entries) so that its tools return less; a new conversation would not help, since the same question calls the same tools',
      );
      expect(shown(await said(h.tg.user(119, { languageCode: 'fr' }), /⚠️/))).toBe(
        '⚙️ [proxy] 🔧 run_tests, 🔧 run_tests\n\n⚙️ [proxy] ⚠️ les résultats des outils appelés par le modèle pour cette réponse ne tiennent pas dans son contexte : avec eux, la conversation (N jetons) dépasse la taille de contexte du modèle local à URL (3000 jetons). Donnez à llama-server un --ctx-size plus grand, ou demandez quelque chose de plus ciblé (un fichier, un test, moins d’entrées de journal) pour que ses outils renvoient moins ; une nouvelle conversation n’y changerait rien, la même question appelant les mêmes outils',
      );
    } finally {
      llama.setContext(undefined);
      llama.script();
      await h.close();
    }
  });
});

describe('a llama mode kept from the test and lint tools', () => {
  it('is named in a warning at start, with the tools it drops and how to give them back, unless its deniedTools names them', async () => {
    const { logger, logs } = recordingLogger('info');
    const s = await startTestService({
      logger,
      config: {
        llama: { baseUrl: llama.baseUrl },
        tools: {
          git: { repo },
          // The tests only read: a local model may run them. The lint may write (--fix): it may not.
          tests: { argv: ['git', 'status'], readOnly: true },
          lint: { argv: ['git', 'status'] },
        },
        modes: {
          local: {
            kind: 'llama',
            description: 'left without its checks',
            allowedTools: ['git_status', 'lint'],
          },
          checked: { kind: 'llama', description: 'runs the tests', allowedTools: ['run_tests'] },
          everything: { kind: 'llama', description: 'every read-only tool', allowedTools: ['*'] },
          // Kept from its tests on purpose: not offered them, and no warning.
          quiet: {
            kind: 'llama',
            description: 'every read-only tool but the tests',
            allowedTools: ['*'],
            deniedTools: ['run_tests'],
          },
        },
      },
      parts: { tools: true },
    });
    try {
      const config = s.service.core.config.configPath;
      expect(logs.filter((l) => l.level === 40 && Array.isArray(l.tools))).toEqual([
        expect.objectContaining({
          mode: 'local',
          tools: ['run_tests'],
          msg: `mode local: modes.local.allowedTools leaves out run_tests, so its local model cannot check its work with them; add "run_tests" to modes.local.allowedTools in ${config} to give them back, or to modes.local.deniedTools to keep them from it without this warning`,
        }),
        expect.objectContaining({
          mode: 'local',
          tools: ['lint'],
          msg: `mode local: modes.local.allowedTools names lint, but its model is not offered it: its command may change things (tools.lint.readOnly is false) and a local model is offered only tools that change nothing: set tools.lint.readOnly to true in ${config} if it only reads`,
        }),
      ]);
      // What the warnings say is what each model is offered.
      const offered = async (model: string) => {
        llama.script(() => ({ chunks: ['ok'] }));
        await s.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'check it' }] });
        const sent = llama.requests.filter((q) => q.path === '/v1/chat/completions').at(-1)?.body as {
          tools?: { function: { name: string } }[];
        };
        return (sent.tools ?? [])
          .map((t) => t.function.name)
          .filter((n) => n === 'run_tests' || n === 'lint');
      };
      expect(await offered('local')).toEqual([]);
      expect(await offered('checked')).toEqual(['run_tests']);
      expect(await offered('everything')).toEqual(['run_tests']);
      expect(await offered('quiet')).toEqual([]);
    } finally {
      llama.script();
      await s.close();
    }
  });
});
