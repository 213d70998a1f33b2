import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config.js';
import { TOOL_INPUTS } from '../src/tools/inputs.js';
import { shortcutTable } from '../src/tools/shortcut-table.js';
import { shortcutAnswerer } from '../src/tools/shortcuts.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { startTestService, type TestService } from './helpers/service.js';

let svc: TestService;
let llama: FakeLlama;
let repo: string;
const deployed = () => path.join(repo, 'deployed.txt');

const MAKEFILE = `deploy:
\t@echo "step 1"; sleep 0.4; echo "step 2"; touch deployed.txt
check:
\t@echo "all checks passed"
smoke:
\t@echo "smoke passed"
snap-list:
\t@echo "no snapshots"
wide:
\t@printf '%0499d😀\\nafter\\n' 0
`;

/** Streams a chat completion and returns its content chunks as they arrived. */
async function chat(words: string): Promise<string[]> {
  const stream = await svc.client.chat.completions.create(
    { model: 'active', messages: [{ role: 'user', content: words }], stream: true },
    { headers: { 'x-session-key': 'openclaw:main' } },
  );
  const chunks: string[] = [];
  for await (const c of stream) {
    const text = c.choices[0]?.delta.content;
    if (text) chunks.push(text);
  }
  return chunks;
}

beforeAll(async () => {
  repo = mkdtempSync(path.join(tmpdir(), 'bst-shortcuts-'));
  execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: repo });
  writeFileSync(path.join(repo, 'Makefile'), MAKEFILE);
  llama = await startFakeLlama();
  svc = await startTestService({
    parts: { tools: true },
    config: {
      // Words that are not a runnable shortcut go to the active brain: the fake llama-server echoes them.
      defaultMode: 'local',
      llama: { baseUrl: llama.baseUrl },
      server: { modeTag: false },
      claude: { bin: 'true' },
      tools: {
        git: { repo },
        make: { targets: ['deploy', 'check', 'wide', 'smoke', 'snap-list'] },
        // The shown part of `wide`'s output ends where its emoji begins.
        chatOutputChars: 500,
        shortcuts: {
          build: {
            tool: 'make_target',
            input: { target: 'check' },
            aliases: ['compile', 'construis'],
            mutating: false,
          },
          audit: false,
          // The owner knows this target only reads: the built-in word, replaced, runs unasked.
          'snap-list': {
            tool: 'make_target',
            input: { target: 'snap-list' },
            aliases: ['snapshots'],
            mutating: false,
          },
          wide: { tool: 'make_target', input: { target: 'wide' }, mutating: false },
        },
      },
    },
  });
});

afterAll(async () => {
  await svc?.close();
  await llama?.close();
  rmSync(repo, { recursive: true, force: true });
});

describe('shortcut words through the OpenAI endpoint', () => {
  it('answers `git` with git_status, as a streamed completion', async () => {
    const text = (await chat('git')).join('');
    expect(text).toContain('⚙️ [proxy] `git` → `git_status`');
    expect(text).toContain('## No commits yet on main');
    expect(text).toMatch(/✅ exit 0 · /);
  });

  it('asks for confirmation before a mutating shortcut, and runs nothing', async () => {
    const en = (await chat('deploy')).join('');
    expect(en).toContain('`deploy` runs `make deploy`, which changes things. Send `deploy yes`');
    const alias = (await chat('Déploie')).join('');
    expect(alias).toContain('Send `deploy yes`');
    // To a reader in French (a Telegram relay says so), in French, saying vous as every French text does.
    const tools = svc.service.tools;
    if (!tools) throw new Error('the tools do not run');
    const ask = shortcutAnswerer(tools.shortcuts, tools.registry, { chatOutputChars: 500 });
    const fr = ask('déploie', 'fr', new AbortController().signal, 'telegram:1');
    const said: string[] = [];
    for await (const text of fr ?? []) said.push(text);
    expect(said.join('')).toContain(
      '`deploy` lance `make deploy`, qui modifie des choses. Envoyez `deploy oui` pour le lancer.',
    );
    expect(existsSync(deployed())).toBe(false);
  });

  it('asks before the built-in make words check and smoke too: a recipe may change things', async () => {
    const runs = () =>
      (
        svc.service.core.db.prepare("SELECT COUNT(*) AS n FROM audit WHERE tool = 'make_target'").get() as {
          n: number;
        }
      ).n;
    const before = runs();
    for (const [words, word] of [
      ['check', 'check'],
      ['Vérifie !', 'check'],
      ['smoke test', 'smoke'],
    ] as const) {
      const text = (await chat(words)).join('');
      expect(text, words).toContain(`runs \`make ${word}\`, which changes things. Send \`${word} yes\``);
    }
    expect(runs()).toBe(before);
    expect((await chat('check yes')).join('')).toContain('all checks passed');
  });

  it('runs it once confirmed, streaming the output as it comes', async () => {
    const chunks = await chat('deploy yes');
    const text = chunks.join('');
    expect(text).toContain('step 1\nstep 2\n');
    expect(text).toMatch(/✅ exit 0/);
    // "step 1" reached the client in a chunk of its own, before the command printed "step 2".
    expect(chunks.some((c) => c.includes('step 1') && !c.includes('step 2'))).toBe(true);
    expect(existsSync(deployed())).toBe(true);
    const audit = svc.service.core.db
      .prepare("SELECT caller, ok FROM audit WHERE tool = 'make_target' ORDER BY id DESC LIMIT 1")
      .get();
    // Who ran it: the conversation the words came from.
    expect(audit).toEqual({ caller: 'openclaw:main', ok: 1 });
  });

  it('cuts the output shown before an emoji rather than inside it, and shows nothing after the cut', async () => {
    const text = (await chat('wide')).join('');
    expect(text).toContain(`\`\`\`\n${'0'.repeat(499)}\n\`\`\`\n[… 9 characters not shown; the end:]`);
    expect(text).toContain('😀\nafter');
  });

  it('matches aliases whatever the case, accents and punctuation, and configured words', async () => {
    for (const [words, output] of [
      ['CONSTRUIS', 'all checks passed'],
      ['/build', 'all checks passed'],
      ['Snapshots !', 'no snapshots'],
    ] as const) {
      const text = (await chat(words)).join('');
      expect(text, words).toContain(output);
    }
  });

  it('answers without streaming too', async () => {
    const r = await svc.client.chat.completions.create({
      model: 'active',
      messages: [{ role: 'user', content: 'build' }],
    });
    expect(r.choices[0]?.message.content).toContain('all checks passed');
  });

  it('leaves to the brain a shortcut its tool would refuse, and longer sentences', async () => {
    const tools = svc.service.tools;
    expect(tools?.resolveShortcut('lint')?.refusal?.message).toContain('tools.lint.argv');
    const audited = () =>
      (svc.service.core.db.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number }).n;
    const before = audited();
    for (const words of ['lint', 'please deploy the app']) {
      const r = await svc.client.chat.completions.create({
        model: 'active',
        messages: [{ role: 'user', content: words }],
      });
      // The brain answered, with the message as the user wrote it.
      expect(r.choices[0]?.message.content).toBe(`echo: ${words}`);
      const sent = llama.requests.at(-1)?.body as { messages: { role: string; content: string }[] };
      expect(sent.messages.at(-1)).toEqual({ role: 'user', content: words });
    }
    // No tool ran.
    expect(audited()).toBe(before);
  });
});

describe('help through the OpenAI endpoint', () => {
  it('names the shortcut words it answers itself, not those its tool would refuse (they go to the brain)', async () => {
    const r = await svc.client.chat.completions.create({
      model: 'active',
      messages: [{ role: 'user', content: 'help' }],
    });
    const help = r.choices[0]?.message.content ?? '';
    // Said before "Anything else goes to the active brain", which `git` does not.
    const words = /^- (.*): shortcut words/m.exec(help)?.[1] ?? '';
    for (const word of ['git', 'deploy', 'check', 'build', 'wide']) expect(words).toContain(`\`${word}\``);
    // lint and test have no command configured here, sync no make target; audit is turned off.
    for (const word of ['lint', 'test', 'sync', 'audit']) expect(words).not.toContain(`\`${word}\``);
    expect(help).toContain('Anything else goes to the active brain.');
  });

  it('names none for a Telegram chat’s words reaching the chat core, which go to the brain', async () => {
    const events = svc.service.core.chat.run(
      {
        model: 'active',
        sessionKey: 'telegram:43',
        messages: [{ role: 'user', content: 'help' }],
        source: 'telegram',
      },
      new AbortController().signal,
    );
    let text = '';
    for await (const ev of events) if (ev.type === 'text') text += ev.text;
    expect(text).toContain('Anything else goes to the active brain.');
    expect(text).not.toContain('shortcut words');
  });
});

describe('shortcut words of a Telegram chat reaching the chat core (a voice note)', () => {
  it('go to the brain, confirmed or not: only the Telegram tool commands ask and run them', async () => {
    const runs = () =>
      (
        svc.service.core.db.prepare("SELECT COUNT(*) AS n FROM audit WHERE tool = 'make_target'").get() as {
          n: number;
        }
      ).n;
    const before = runs();
    for (const words of ['deploy yes', 'check']) {
      const events = svc.service.core.chat.run(
        {
          model: 'active',
          sessionKey: 'telegram:42',
          messages: [{ role: 'user', content: words }],
          source: 'telegram',
        },
        new AbortController().signal,
      );
      let text = '';
      for await (const ev of events) if (ev.type === 'text') text += ev.text;
      expect(text, words).toBe(`echo: ${words}`);
    }
    expect(runs()).toBe(before);
  });
});

describe('the API the Telegram layer builds on', () => {
  it('resolves shortcut words to a tool call, with whether it mutates', () => {
    const tools = svc.service.tools;
    expect(tools?.resolveShortcut('deploy')).toEqual({
      word: 'deploy',
      tool: 'make_target',
      input: { target: 'deploy' },
      mutating: true,
      confirmed: false,
    });
    expect(tools?.resolveShortcut('Déploie oui')).toMatchObject({ word: 'deploy', confirmed: true });
    expect(tools?.resolveShortcut('/Check')).toMatchObject({ tool: 'make_target', mutating: true });
    expect(tools?.resolveShortcut('smoke')).toMatchObject({ tool: 'make_target', mutating: true });
    expect(tools?.resolveShortcut('snapshots')).toMatchObject({ word: 'snap-list', mutating: false });
    expect(tools?.resolveShortcut('report')).toMatchObject({
      tool: 'usage',
      input: { since: '7d' },
      mutating: false,
    });
    expect(tools?.resolveShortcut('audit')).toBeUndefined();
    expect(tools?.resolveShortcut('hello there')).toBeUndefined();
    expect(tools?.shortcuts.list().map((s) => s.word)).toContain('build');
  });

  it('gives each built-in word input its tool takes, and checks configured words against the tools it registers', () => {
    const tools = svc.service.tools;
    if (!tools) throw new Error('tools not started');
    // loadConfig checks only the configured words, against TOOL_INPUTS: the built-in ones are checked here.
    for (const s of shortcutTable({}).all) {
      expect(() => tools.registry.validate(s.tool, s.input), s.word).not.toThrow();
    }
    expect(tools.registry.names()).toEqual(Object.keys(TOOL_INPUTS));
  });

  it('prepares a call without running it, and calls with live output and the caller', async () => {
    const tools = svc.service.tools;
    if (!tools) throw new Error('tools not started');
    expect(tools.registry.prepare('self_upgrade', { action: 'apply' }).mutating).toBe(true);
    expect(tools.registry.prepare('self_upgrade', {}).mutating).toBe(false);
    expect(() => tools.registry.prepare('make_target', { target: 'sync' })).toThrow(/not allowed/);
    const seen: string[] = [];
    const r = await tools.registry.call(
      'make_target',
      { target: 'check' },
      { caller: 'telegram:42', onOutput: (c) => seen.push(c) },
    );
    expect(r).toMatchObject({ ok: true, exitCode: 0, truncated: false, output: 'all checks passed\n' });
    expect(seen).toEqual(['all checks passed\n']);
    expect(tools.registry.recentAudit(1)[0]).toMatchObject({
      tool: 'make_target',
      caller: 'telegram:42',
      ok: true,
    });
  });
});

describe('configuration errors name the field', () => {
  const failing = async (tools: Record<string, unknown>) => {
    const err = await startTestService({
      parts: { tools: true },
      config: { claude: { bin: 'true' }, tools },
    }).then(
      async (s) => {
        await s.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  };

  it('in the tools schema', async () => {
    expect(await failing({ make: { targets: 'all' } })).toContain('tools.make.targets');
    expect(await failing({ incus: { instances: ['ok', '-bad'] } })).toContain('tools.incus.instances.1');
    expect(await failing({ files: { root: ['/srv'] } })).toMatch(/tools\.files: .*root/);
  });

  it('in shortcuts', async () => {
    expect(await failing({ shortcuts: { oops: { tool: 'nope' } } })).toContain('tools.shortcuts.oops.tool');
    expect(await failing({ shortcuts: { oops: { tool: 'git_log', input: { max: 'x' } } } })).toContain(
      'tools.shortcuts.oops.input: git_log: max:',
    );
  });
});
