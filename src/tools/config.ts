import path from 'node:path';
import { z } from 'zod';
import { type Config, ConfigError } from '../config.js';

/**
 * The `tools` section of brainstem.json. Everything that lets a tool reach
 * further (a repository, make targets, instances, file roots, private hosts)
 * is an allow-list that starts empty, so a fresh install exposes nothing.
 * Relative paths are resolved against the directory of the config file.
 */

const argv = z.array(z.string().min(1)).min(1);

const command = z
  .object({
    argv,
    /** Default: the git repository. */
    cwd: z.string().optional(),
    timeoutMs: z.number().int().positive().optional(),
  })
  .strict();

/** Names passed to make or incus as arguments: no option-looking or odd characters. */
const plainName = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$/, 'letters, digits and _ . : / - only');

const shortcutSchema = z
  .object({
    tool: z.string(),
    input: z.record(z.string(), z.unknown()).default({}),
    /** Other words (French, English, typos) that mean the same. */
    aliases: z.array(z.string().min(1)).default([]),
    /** Overrides the tool's own flag, e.g. a make target known to only read. */
    mutating: z.boolean().optional(),
    description: z.string().optional(),
  })
  .strict();

const toolsConfigSchema = z
  .object({
    /** Wall clock of one command; the whole process tree is killed when it is hit. */
    timeoutMs: z.number().int().positive().default(300_000),
    /** Output kept per call: the head and the tail, with a marker where the middle was dropped. */
    maxOutputChars: z.number().int().min(1_000).default(200_000),
    /** Output streamed into a chat answer before the rest is summarised. */
    chatOutputChars: z.number().int().min(500).default(12_000),
    /** How deep brains may call brains (brain_chat, claude_code): 1 lets a brain ask another, which may not ask a third; 0 never. */
    maxBrainDepth: z.number().int().min(0).max(5).default(1),
    git: z
      .object({
        repo: z.string().optional(),
        maxLogEntries: z.number().int().min(1).max(1_000).default(100),
      })
      .strict()
      .prefault({}),
    make: z
      .object({
        /** Default: the git repository. */
        dir: z.string().optional(),
        targets: z.array(plainName).default([]),
      })
      .strict()
      .prefault({}),
    tests: command.optional(),
    lint: command.optional(),
    incus: z
      .object({
        bin: z.string().default('incus'),
        instances: z.array(plainName).default([]),
        projects: z.array(plainName).default(['default']),
        /** When set, incus_exec runs only these programs (the first argv element). */
        commands: z.array(z.string().min(1)).optional(),
      })
      .strict()
      .prefault({}),
    files: z
      .object({
        roots: z.array(z.string()).default([]),
        maxBytes: z.number().int().positive().default(1_000_000),
      })
      .strict()
      .prefault({}),
    webSearch: z
      .object({
        apiKey: z.string().min(1).optional(),
        baseUrl: z.url().default('https://api.search.brave.com/res/v1'),
        timeoutMs: z.number().int().positive().default(15_000),
        /** argv prefix run with the request URL appended; it prints Brave's JSON and holds the key itself. */
        delegate: argv.optional(),
      })
      .strict()
      .prefault({}),
    webFetch: z
      .object({
        enabled: z.boolean().default(true),
        /** Hosts, IPs or CIDRs that may be fetched even though they are loopback or private. */
        allowPrivate: z.array(z.string().min(1)).default([]),
        maxBytes: z.number().int().positive().default(2_000_000),
        maxChars: z.number().int().min(500).default(20_000),
        timeoutMs: z.number().int().positive().default(20_000),
        maxRedirects: z.number().int().min(0).max(20).default(5),
        /** argv prefix run with the URL appended; it prints the page body (fetched from elsewhere). */
        delegate: argv.optional(),
      })
      .strict()
      .prefault({}),
    claudeCode: z
      .object({
        /** Default: a folder of its own under the data dir. */
        cwd: z.string().optional(),
        /** The most a caller may grant; a call may ask for fewer. */
        allowedTools: z.array(z.string().min(1)).default([]),
        model: z.string().optional(),
      })
      .strict()
      .prefault({}),
    selfUpgrade: z
      .object({
        /** Default: brainstem's own checkout. */
        repo: z.string().optional(),
        /** Run in order after `git pull --ff-only`. */
        steps: z.array(argv).default([
          ['npm', 'ci'],
          ['npm', 'run', 'build'],
        ]),
        /** Started detached once the answer is delivered, since it restarts brainstem itself. */
        reload: argv.default(['pm2', 'reload', 'brainstem']),
        /** Named upgrade procedures of the rest of the stack (e.g. OpenClaw), each a list of commands. */
        framework: z.record(plainName, z.array(argv).min(1)).default({}),
      })
      .strict()
      .prefault({}),
    /** Words answered with a tool call instead of a brain; `false` removes a built-in one. */
    shortcuts: z.record(z.string().min(1), z.union([shortcutSchema, z.literal(false)])).default({}),
  })
  .strict();

export type ToolsConfig = z.infer<typeof toolsConfigSchema>;
export type ShortcutConfig = z.infer<typeof shortcutSchema>;

/** Parses `config.tools`; a wrong field is reported as `tools.<path>` so the user knows what to fix. */
export function parseToolsConfig(config: Pick<Config, 'tools' | 'configPath'>): ToolsConfig {
  const parsed = toolsConfigSchema.safeParse(config.tools ?? {});
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${config.configPath}: ${['tools', ...i.path].join('.')}: ${i.message}`),
    );
  }
  const c = parsed.data;
  const base = path.dirname(config.configPath);
  const abs = (p: string | undefined) => (p === undefined ? undefined : path.resolve(base, p));
  const cmd = (x: ToolsConfig['tests']) => (x ? { ...x, cwd: abs(x.cwd) } : undefined);
  return {
    ...c,
    git: { ...c.git, repo: abs(c.git.repo) },
    make: { ...c.make, dir: abs(c.make.dir) },
    tests: cmd(c.tests),
    lint: cmd(c.lint),
    files: { ...c.files, roots: c.files.roots.map((r) => path.resolve(base, r)) },
    claudeCode: { ...c.claudeCode, cwd: abs(c.claudeCode.cwd) },
    selfUpgrade: { ...c.selfUpgrade, repo: abs(c.selfUpgrade.repo) },
  };
}
