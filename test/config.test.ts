import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const dir = () => mkdtempSync(path.join(tmpdir(), 'bst-config-'));

/** The problem lines of the ConfigError that `load` throws. */
function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('the configuration was accepted');
}

/** The problems loadConfig names for `json` as brainstem.json, and that file's path (which they name). */
function fileProblems(json: unknown): { file: string; problems: string[] } {
  const d = dir();
  const file = path.join(d, 'brainstem.json');
  writeFileSync(file, JSON.stringify(json));
  return { file, problems: problemsOf(() => loadConfig({}, d)) };
}

describe('loadConfig', () => {
  it('runs on built-in defaults with no file', () => {
    const c = loadConfig({ HOME: '/home/x' }, dir());
    expect(c.configFileFound).toBe(false);
    expect(c.server.host).toBe('127.0.0.1');
    expect(c.server.port).toBe(9090);
    expect(c.defaultMode).toBe('assistant');
    expect(c.modes.map((m) => m.id)).toEqual(['anklume', 'assistant', 'local']);
    expect(c.claude.credentialsFile).toBe('/home/x/.claude/.credentials.json');
  });

  it('overlays the environment on the file', () => {
    const d = dir();
    writeFileSync(
      path.join(d, 'brainstem.json'),
      JSON.stringify({ server: { port: 1234 }, telegram: { allowedUsers: [1] } }),
    );
    const c = loadConfig({ BRAINSTEM_HOST: '0.0.0.0', TELEGRAM_ALLOWED_USERS: '5, 6' }, d);
    expect(c.server.port).toBe(1234);
    expect(c.server.host).toBe('0.0.0.0');
    expect(c.telegram.allowedUsers).toEqual([5, 6]);
  });

  it('takes a blank BRAINSTEM_PORT as unset, as every other variable, not as port 0 (any free port)', () => {
    // An .env with `BRAINSTEM_PORT=` had brainstem listen on a random port, where OpenClaw never found it.
    expect(loadConfig({ BRAINSTEM_PORT: '' }, dir()).server.port).toBe(9090);
    const d = dir();
    writeFileSync(path.join(d, 'brainstem.json'), JSON.stringify({ server: { port: 1234 } }));
    expect(loadConfig({ BRAINSTEM_PORT: ' ' }, d).server.port).toBe(1234);
    expect(loadConfig({ BRAINSTEM_PORT: '0' }, d).server.port).toBe(0);
  });

  it('names every wrong field, one line each, the checks between fields included', () => {
    const d = dir();
    const file = path.join(d, 'brainstem.json');
    writeFileSync(
      file,
      JSON.stringify({
        server: { port: 'x' },
        defaultMode: 'nope',
        modes: { local: { kind: 'llama', llamaModel: 'm' } },
        bogus: 1,
      }),
    );
    const problems = problemsOf(() => loadConfig({ TELEGRAM_ALLOWED_USERS: '5, alice' }, d));
    expect(problems).toEqual([
      'TELEGRAM_ALLOWED_USERS: "alice" is not a Telegram user id (digits only)',
      `${file}: server.port: Invalid input: expected number, received string`,
      `${file}: (top level): Unrecognized key: "bogus"`,
      `${file}: modes.local.llamaModel: "m" is not defined under llama.models`,
      `${file}: defaultMode: "nope" is not a mode (modes: anklume, assistant, local)`,
    ]);
  });

  it('names the tools section’s problems, a short BRAINSTEM_API_TOKEN and a wrong LOG_LEVEL with the rest', () => {
    const d = dir();
    const file = path.join(d, 'brainstem.json');
    writeFileSync(file, JSON.stringify({ bogus: 1, tools: { git: { repoo: '/x' } } }));
    const problems = problemsOf(() => loadConfig({ BRAINSTEM_API_TOKEN: 'short', LOG_LEVEL: 'verbose' }, d));
    expect(problems).toEqual([
      'BRAINSTEM_API_TOKEN: must be at least 16 characters (it has 5); unset it to use the token brainstem generates in its data dir',
      'LOG_LEVEL: "verbose" is not one of fatal, error, warn, info, debug, trace, silent',
      `${file}: (top level): Unrecognized key: "bogus"`,
      `${file}: tools.git: Unrecognized key: "repoo"`,
    ]);
  });

  it('names wrong shortcuts with the other problems: a tool that does not exist, input it refuses, a word taken', () => {
    const { file, problems } = fileProblems({
      server: { port: 'x' },
      tools: {
        shortcuts: {
          foo: { tool: 'nope' },
          logs: { tool: 'git_log', input: { max: 'x' } },
          fine: { tool: 'lint', aliases: ['tests'] },
        },
      },
    });
    expect(problems).toEqual([
      `${file}: server.port: Invalid input: expected number, received string`,
      expect.stringContaining(`${file}: tools.shortcuts.foo.tool: Unknown tool "nope". Tools: git_status, `),
      `${file}: tools.shortcuts.logs.input: git_log: max: Invalid input: expected number, received string`,
      `${file}: tools.shortcuts.fine: "tests" is already a shortcut for test`,
    ]);
  });

  it("names a mode's brainstemTools that Claude may not run unasked with the other problems", () => {
    const { file, problems } = fileProblems({
      server: { port: 'x' },
      modes: {
        assistant: { kind: 'claude', brainstemTools: ['git_status', 'make_target', 'lint', 'nope'] },
      },
      tools: { tests: { argv: ['npm', 'test'], readOnly: true } },
    });
    const readOnly = `(read-only tools: git_status, git_log, git_diff, run_tests, incus_list, read_file, web_search, web_fetch, usage, audit)`;
    expect(problems).toEqual([
      `${file}: server.port: Invalid input: expected number, received string`,
      `${file}: modes.assistant.brainstemTools: "make_target" can change things, so Claude must ask before each call ${readOnly}`,
      `${file}: modes.assistant.brainstemTools: "lint" can change things, so Claude must ask before each call; set tools.lint.readOnly to true if its command only reads ${readOnly}`,
      `${file}: modes.assistant.brainstemTools: "nope" is not a brainstem tool ${readOnly}`,
    ]);
  });

  it('names the variable, not a file that may not exist, for a wrong value it set', () => {
    const problems = problemsOf(() =>
      loadConfig({ LLAMA_BASE_URL: 'not-a-url', TELEGRAM_API_ROOT: 'nope' }, dir()),
    );
    expect(problems).toEqual([
      'LLAMA_BASE_URL (llama.baseUrl): Invalid URL',
      'TELEGRAM_API_ROOT (telegram.apiRoot): Invalid URL',
    ]);
  });

  it('names the file for its own wrong value when the variable for that field was refused already', () => {
    const d = dir();
    const file = path.join(d, 'brainstem.json');
    writeFileSync(file, JSON.stringify({ server: { port: 'x' } }));
    const problems = problemsOf(() => loadConfig({ BRAINSTEM_PORT: 'abc' }, d));
    expect(problems).toEqual([
      'BRAINSTEM_PORT: "abc" is not a port number',
      `${file}: server.port: Invalid input: expected number, received string`,
    ]);
  });

  it('takes a bot token with the whitespace a copy adds, and refuses one with quotes around it, naming where it came from and never the token', () => {
    const token = '123456789:AAH-not-a-real-bot-token-0123456789ab';
    // A trailing newline (`echo … > file`, a here-doc) or spaces: no token has any, so they go.
    expect(loadConfig({ TELEGRAM_BOT_TOKEN: `${token}\n` }, dir()).telegram.token).toBe(token);
    // A blank variable is unset, as every other one.
    expect(loadConfig({ TELEGRAM_BOT_TOKEN: ' \n' }, dir()).telegram.token).toBeUndefined();
    // Quotes that an .env file read by Docker's --env-file or systemd's EnvironmentFile= keep: the bot
    // started, and the only line said "Telegram refused the bot token", with the token hidden, so the
    // quotes never showed.
    const shape =
      "is not shaped like a bot token (@BotFather's is digits, a colon, then letters, digits, - and _, as in 123456789:AAH…)";
    expect(problemsOf(() => loadConfig({ TELEGRAM_BOT_TOKEN: `"${token}"` }, dir()))).toEqual([
      `TELEGRAM_BOT_TOKEN (telegram.token): ${shape}; it has quotes around it, which are not part of it`,
    ]);
    const { file, problems } = fileProblems({ telegram: { token: `bot${token}` } });
    expect(problems).toEqual([`${file}: telegram.token: ${shape}`]);
    expect(problems.join('\n')).not.toContain(token.split(':')[1]);
  });

  it('refuses Telegram’s shared senders (anonymous admins, channels) as allowed users or approvers', () => {
    const d = dir();
    const file = path.join(d, 'brainstem.json');
    writeFileSync(file, JSON.stringify({ telegram: { approvers: [5, 777000, 136817688] } }));
    const problems = problemsOf(() => loadConfig({ TELEGRAM_ALLOWED_USERS: '5, 1087968824' }, d));
    const advice =
      "it names nobody, and would let in everyone who writes that way; list each person's own id (the bot tells anyone writing to it as themselves their id)";
    expect(problems).toEqual([
      `TELEGRAM_ALLOWED_USERS (telegram.allowedUsers): 1087968824 is GroupAnonymousBot, the sender of every anonymous group admin: ${advice}`,
      `${file}: telegram.approvers: 777000 is Telegram, the sender of every post a linked channel forwards to its group: ${advice}`,
      `${file}: telegram.approvers: 136817688 is Channel_Bot, the sender of everyone writing in a group as a channel: ${advice}`,
    ]);
  });

  it('refuses a time longer than Node’s timers wait (about 24 days), naming the field, and takes the longest they do', () => {
    // A longer delay fires after 1 ms: a 35-day turn limit stopped every Claude turn at once,
    // and a 35-day poll read the credentials file hundreds of times a second.
    const { file, problems } = fileProblems({
      claude: { turnTimeoutMs: 3_000_000_000 },
      credentials: { pollIntervalMs: 3_000_000_000 },
      telegram: { confirmTimeoutMs: 2 ** 31 },
    });
    const tooLong = "at most 2147483647 ms (about 24 days): Node's timers cannot wait longer";
    expect(problems).toEqual([
      `${file}: claude.turnTimeoutMs: ${tooLong}`,
      `${file}: telegram.confirmTimeoutMs: ${tooLong}`,
      `${file}: credentials.pollIntervalMs: ${tooLong}`,
    ]);
    // The tools' time limits too: `tools.timeoutMs: 3000000000` stopped git_status after 17 ms.
    const tools = fileProblems({
      tools: { timeoutMs: 3_000_000_000, webFetch: { timeoutMs: 2 ** 31 } },
    });
    expect(tools.problems).toEqual([
      `${tools.file}: tools.timeoutMs: ${tooLong}`,
      `${tools.file}: tools.webFetch.timeoutMs: ${tooLong}`,
    ]);
    const d = dir();
    writeFileSync(path.join(d, 'brainstem.json'), JSON.stringify({ claude: { turnTimeoutMs: 2 ** 31 - 1 } }));
    expect(loadConfig({}, d).claude.turnTimeoutMs).toBe(2 ** 31 - 1);
  });

  it('refuses a llama.healthPath that does not start at the server root', () => {
    // It is appended to the root: `health` probed http://127.0.0.1:8081health, an invalid URL, for ever.
    const { file, problems } = fileProblems({ llama: { healthPath: 'health' } });
    expect(problems).toEqual([
      `${file}: llama.healthPath: a path from the server root, starting with "/" (e.g. "/health")`,
    ]);
  });

  it('refuses a mode id a /mode button cannot carry (over 40 characters)', () => {
    const d = dir();
    const file = path.join(d, 'brainstem.json');
    const id = 'm'.repeat(41);
    writeFileSync(file, JSON.stringify({ modes: { [id]: { kind: 'llama' } } }));
    expect(problemsOf(() => loadConfig({}, d))).toContain(
      `${file}: modes.${id}: mode ids are 1 to 40 lower-case letters, digits, - and _`,
    );
  });

  it('refuses a mode name that can never be chosen: "active", an alias with a "/" or surrounding spaces', () => {
    const { file, problems } = fileProblems({
      modes: {
        active: { kind: 'llama' },
        coder: { kind: 'llama', aliases: ['Active', 'qwen/coder', ' spaced ', ''] },
      },
    });
    const never = (mode: string, name: string, why: string) =>
      `${file}: modes.${mode}: name "${name}" can never be chosen (${why}); pick another`;
    const shape = 'a name has no "/", no surrounding spaces and is not empty';
    expect(problems).toEqual([
      never('active', 'active', '"active" names the mode running now'),
      never('coder', 'active', '"active" names the mode running now'),
      never('coder', 'qwen/coder', shape),
      never('coder', ' spaced ', shape),
      never('coder', '', shape),
    ]);
  });

  it('reads a blank TELEGRAM_ALLOWED_USERS as unset, and names the file when the config path is a folder', () => {
    const d = dir();
    writeFileSync(path.join(d, 'brainstem.json'), JSON.stringify({ telegram: { allowedUsers: [7] } }));
    // `TELEGRAM_ALLOWED_USERS=` in an .env took the bot away from everybody.
    expect(loadConfig({ TELEGRAM_ALLOWED_USERS: ' ' }, d).telegram.allowedUsers).toEqual([7]);
    expect(problemsOf(() => loadConfig({ BRAINSTEM_CONFIG: d }, d))).toEqual([
      `${d}: cannot be read (it is a folder; BRAINSTEM_CONFIG names the file)`,
    ]);
  });

  it('reports a mode with a wrong field once, not also as a missing mode', () => {
    const d = dir();
    const file = path.join(d, 'brainstem.json');
    writeFileSync(
      file,
      JSON.stringify({ defaultMode: 'coder', modes: { coder: { kind: 'gpt', aliases: ['lical'] } } }),
    );
    const problems = problemsOf(() => loadConfig({}, d));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${file}: modes\\.coder\\.kind: `));
  });

  it('rejects malformed JSON (a byte order mark is none) and a bad user id list with a clear line', () => {
    const d = dir();
    writeFileSync(path.join(d, 'brainstem.json'), '{ not json');
    expect(() => loadConfig({}, d)).toThrow(/not valid JSON \(.* at line 1 column 3\)/);
    // Where, not what: V8 quotes the text around the fault, and a secret may be in it.
    writeFileSync(path.join(d, 'brainstem.json'), '{\n  "a": 1,\n  "b": sk-ant-oat01-secret-value\n}');
    expect(() => loadConfig({}, d)).toThrow(/not valid JSON \(Unexpected token 's' at line 3 column 8\)/);
    expect(() => loadConfig({}, d)).not.toThrow(/oat01/);
    expect(() => loadConfig({ TELEGRAM_ALLOWED_USERS: 'alice' }, dir())).toThrow(/TELEGRAM_ALLOWED_USERS/);
    // A byte order mark (some editors write one) is no fault: it was refused as an invisible token.
    writeFileSync(path.join(d, 'brainstem.json'), `\uFEFF${JSON.stringify({ server: { port: 1234 } })}`);
    expect(loadConfig({}, d).server.port).toBe(1234);
  });

  it('takes transcription as either an API or a command with {file}, and resolves the key file', () => {
    const load = (transcription: unknown) => {
      const d = dir();
      writeFileSync(path.join(d, 'brainstem.json'), JSON.stringify({ transcription }));
      return () => loadConfig({}, d);
    };
    expect(problemsOf(load({ url: 'http://127.0.0.1:8000/v1', command: ['stt', '{file}'] }))).toEqual([
      expect.stringMatching(/transcription: set either `url` .* or `command`, not both or neither/),
    ]);
    expect(problemsOf(load({ command: ['whisper-cli', 'audio.ogg'] }))).toEqual([
      expect.stringMatching(/transcription\.command: one element must be `\{file\}`/),
    ]);
    // Valid URLs both, and neither can ever be posted to: refused at start, not at every voice note.
    expect(problemsOf(load({ url: 'whisper:8000/v1' }))).toEqual([
      expect.stringMatching(/transcription\.url: an http:\/\/ or https:\/\/ URL/),
    ]);
    const withCredentials = problemsOf(load({ url: 'https://me:hunter2@stt.example/v1' }));
    expect(withCredentials).toEqual([expect.stringMatching(/transcription\.url: no user:password@ in it/)]);
    expect(withCredentials.join()).not.toContain('hunter2');
    expect(problemsOf(load({ url: 'stt box' }))).toEqual([
      expect.stringMatching(/transcription\.url: Invalid URL/),
    ]);
    // Read by the API only: a command given it would not get it, and transcribe in its own default language.
    expect(problemsOf(load({ command: ['whisper-cli', '-f', '{file}'], language: 'fr' }))).toEqual([
      expect.stringMatching(
        /: transcription\.language: only `url` reads it; with `command`, put the language in its argv \(whisper-cli: "-l", "fr"\)$/,
      ),
    ]);
    const d = dir();
    writeFileSync(
      path.join(d, 'brainstem.json'),
      JSON.stringify({ transcription: { url: 'http://127.0.0.1:8000/v1', apiKeyFile: 'stt.key' } }),
    );
    const c = loadConfig({}, d);
    expect(c.transcription).toMatchObject({
      model: 'whisper-1',
      timeoutMs: 120_000,
      apiKeyFile: path.join(d, 'stt.key'),
    });
  });

  it('checks mode references', () => {
    const d = dir();
    writeFileSync(
      path.join(d, 'brainstem.json'),
      JSON.stringify({
        defaultMode: 'nope',
        usageLimit: { fallbackMode: 'lical' },
        modes: { local: { kind: 'llama', llamaModel: 'qwen' }, coder: { kind: 'llama', aliases: ['LOCAL'] } },
      }),
    );
    const p = problemsOf(() => loadConfig({}, d)).join('\n');
    expect(p).toMatch(/defaultMode: "nope" is not a mode/);
    expect(p).toMatch(/modes\.local\.llamaModel: "qwen" is not defined/);
    expect(p).toMatch(/modes\.coder: name "local" is already used by mode "local"/);
    // The configured `local` replaced the built-in one whole, aliases included.
    expect(p).toMatch(/usageLimit\.fallbackMode: "lical" is not a mode/);
  });

  it('refuses a mode field its kind does not read, each named, and takes each on the kind that reads it', () => {
    const claudeOnly = {
      cwd: '/srv/x',
      systemPrompt: 'Be brief.',
      spares: 2,
      brainstemTools: ['git_status'],
      env: { A: 'b' },
      budget: { dayUsd: 1 },
    };
    const llamaOnly = {
      llamaModel: 'qwen',
      personaDir: '/srv/persona',
      baseUrl: 'http://127.0.0.1:8082/v1',
      templateOpensThink: true,
    };
    const llama = { models: { qwen: { start: [['true']], stop: [['true']] } } };
    const { file, problems } = fileProblems({
      llama,
      modes: { small: { kind: 'llama', ...claudeOnly }, big: { kind: 'claude', ...llamaOnly } },
    });
    const instead: Record<string, string> = {
      systemPrompt: ' (a llama mode takes the client’s system message, or its persona from `personaDir`)',
      baseUrl: ' (a Claude mode’s API address is `ANTHROPIC_BASE_URL` in its `env`)',
    };
    expect(problems).toEqual([
      ...Object.keys(claudeOnly).map(
        (f) =>
          `${file}: modes.small.${f}: only Claude modes read it, and this is a llama mode${instead[f] ?? ''}`,
      ),
      ...Object.keys(llamaOnly).map(
        (f) =>
          `${file}: modes.big.${f}: only llama modes read it, and this is a Claude mode${instead[f] ?? ''}`,
      ),
    ]);
    const d = dir();
    writeFileSync(
      path.join(d, 'brainstem.json'),
      JSON.stringify({
        llama,
        modes: { small: { kind: 'llama', ...llamaOnly }, big: { kind: 'claude', ...claudeOnly } },
      }),
    );
    const modes = loadConfig({}, d).modes;
    expect(modes.find((m) => m.id === 'small')).toMatchObject(llamaOnly);
    expect(modes.find((m) => m.id === 'big')).toMatchObject(claudeOnly);
  });

  it("refuses a Claude allow-list rule that would let it run brainstem's tools without asking", () => {
    const d = dir();
    const rules = ['Read', 'mcp__brainstem', 'mcp__*', 'mcp__brainstem__make_target'];
    writeFileSync(
      path.join(d, 'brainstem.json'),
      JSON.stringify({ modes: { assistant: { kind: 'claude', allowedTools: rules } } }),
    );
    const err = (() => {
      try {
        loadConfig({}, d);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.match(/"([^"]+)" would let Claude/)?.[1])).toEqual(
      rules.slice(1),
    );
    expect((err as ConfigError).problems[0]).toContain(
      'list read-only ones by name in modes.assistant.brainstemTools',
    );
  });
});
