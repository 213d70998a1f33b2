import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { KvStore } from '../db/index.js';
import { BrainstemError } from '../errors.js';
import { html } from '../html.js';
import { noticeLang, t } from '../i18n.js';
import type { Logger } from '../logger.js';
import type { Notifier } from '../notices.js';
import { type Execa, subprocesses } from '../subprocesses.js';
import type { ToolsConfig } from './config.js';
import { childEnv, OutputCap, type Runner } from './exec.js';
import { type AnyTool, defineTool, type ToolContext } from './registry.js';

/**
 * self_upgrade: `check` fetches and lists the commits brainstem is behind;
 * `apply` pulls them (fast-forward only, clean tree only), runs the install and
 * build steps, and reloads brainstem once the answer is delivered. The reload
 * is remembered so the restarted brainstem reports how it went.
 */

const PENDING_KEY = 'self_upgrade_pending';
const GIT_ENV = { GIT_TERMINAL_PROMPT: '0' };

interface Pending {
  from: string;
  to: string;
  ts: number;
}

export interface SelfUpgradeDeps {
  cfg: ToolsConfig['selfUpgrade'];
  /** The checkout to upgrade: tools.selfUpgrade.repo, else brainstem's own (see ownCheckout). */
  repo: string;
  maxOutputChars: number;
  run: Runner;
  kv: KvStore;
  notifier: Notifier;
  logger: Logger;
}

/** brainstem's own checkout: the nearest directory above this module with brainstem's package.json. */
export function ownCheckout(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (
      existsSync(pkg) &&
      (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'brainstem'
    ) {
      return dir;
    }
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

export function selfUpgradeTool(deps: SelfUpgradeDeps): AnyTool {
  const { cfg, run, repo } = deps;
  const git = (args: string[], ctx: ToolContext) =>
    run(['git', '--no-pager', ...args], { cwd: repo, env: GIT_ENV, signal: ctx.signal });
  const gitOk = async (args: string[], ctx: ToolContext) => {
    const r = await git(args, ctx);
    if (r.exitCode !== 0) {
      throw new BrainstemError(
        'TOOL_FAILED',
        `git ${args.join(' ')} failed in ${repo}: ${r.output.trim().slice(-500)}`,
      );
    }
    return r.output.trim();
  };

  const check = async (ctx: ToolContext) => {
    await gitOk(['fetch', '--quiet'], ctx);
    const upstream = await git(['rev-parse', '--abbrev-ref', '--symbolic-full-name', '@{u}'], ctx);
    if (upstream.exitCode !== 0) {
      throw new BrainstemError(
        'TOOL_REFUSED',
        `The current branch of ${repo} has no upstream to upgrade from (git branch --set-upstream-to).`,
      );
    }
    const [log, behind, ahead, status] = await Promise.all([
      gitOk(['log', '--format=%h%x09%s', '-n', '100', 'HEAD..@{u}'], ctx),
      gitOk(['rev-list', '--count', 'HEAD..@{u}'], ctx),
      gitOk(['rev-list', '--count', '@{u}..HEAD'], ctx),
      gitOk(['status', '--porcelain', '--untracked-files=no'], ctx),
    ]);
    const commits = log
      ? log.split('\n').map((l) => {
          const [hash = '', ...subject] = l.split('\t');
          return { hash, subject: subject.join('\t') };
        })
      : [];
    const dirty = status
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    return {
      repo,
      upstream: upstream.output.trim(),
      behind: Number(behind),
      ahead: Number(ahead),
      commits,
      dirty,
    };
  };

  return defineTool({
    name: 'self_upgrade',
    description:
      '`check`: fetches and lists the commits brainstem is behind. `apply`: pulls them (fast-forward, clean tree only), installs, builds and reloads brainstem. `framework` runs a configured upgrade of the rest of the stack (`name`).',
    input: z
      .object({
        action: z.enum(['check', 'apply', 'framework']).default('check'),
        name: z.string().min(1).optional().describe('For `framework`: which configured upgrade.'),
      })
      .strict(),
    mutating: (input) => input.action !== 'check',
    authorize: (input) => {
      if (input.action !== 'framework') return;
      const names = Object.keys(cfg.framework);
      if (!input.name || !cfg.framework[input.name]) {
        throw new BrainstemError(
          names.length ? 'TOOL_FORBIDDEN' : 'TOOL_NOT_CONFIGURED',
          names.length
            ? `Unknown framework upgrade "${input.name ?? ''}". Configured: ${names.join(', ')}.`
            : 'No framework upgrade is configured (tools.selfUpgrade.framework in brainstem.json).',
          'name',
        );
      }
    },
    run: async (input, ctx) => {
      if (input.action === 'check') {
        const c = await check(ctx);
        const lines =
          c.behind === 0
            ? [`brainstem is up to date with ${c.upstream}.`]
            : [
                `${c.behind} new commit(s) on ${c.upstream}:`,
                ...c.commits.map((x) => `- ${x.hash} ${x.subject}`),
              ];
        if (c.dirty.length) lines.push(`The working tree has uncommitted changes: ${c.dirty.join(', ')}.`);
        return { data: c, output: lines.join('\n') };
      }
      if (input.action === 'framework') {
        return steps(cfg.framework[input.name ?? ''] ?? [], repo, deps, ctx);
      }
      const c = await check(ctx);
      if (c.dirty.length > 0) {
        throw new BrainstemError(
          'TOOL_REFUSED',
          `The working tree of ${repo} has uncommitted changes (${c.dirty.join(', ')}); commit or stash them, then upgrade.`,
        );
      }
      if (c.behind === 0)
        return { data: { ...c, upgraded: false }, output: `Already up to date with ${c.upstream}.` };
      const from = await gitOk(['rev-parse', '--short', 'HEAD'], ctx);
      const result = await steps([['git', 'pull', '--ff-only'], ...cfg.steps], repo, deps, ctx);
      if (result.exitCode !== 0) return { ...result, data: { ...c, upgraded: false } };
      const to = await gitOk(['rev-parse', '--short', 'HEAD'], ctx);
      const { execa } = await subprocesses();
      return {
        ...result,
        output: `${result.output}\nUpgraded ${from} → ${to}; reloading brainstem (${cfg.reload.join(' ')}).`,
        data: { ...c, upgraded: true, from, to },
        afterDelivery: () => reload(deps, { from, to, ts: Date.now() }, execa),
      };
    },
  });
}

/** Runs commands in order, output streamed and kept together; stops at the first failure. */
async function steps(commands: string[][], cwd: string, deps: SelfUpgradeDeps, ctx: ToolContext) {
  const cap = new OutputCap(deps.maxOutputChars);
  const say = (text: string) => {
    cap.push(text);
    ctx.onOutput?.(text);
  };
  let exitCode = 0;
  for (const argv of commands) {
    say(`$ ${argv.join(' ')}\n`);
    const r = await deps.run(argv, { cwd, env: GIT_ENV, signal: ctx.signal, onOutput: ctx.onOutput });
    cap.push(r.output.endsWith('\n') || !r.output ? r.output : `${r.output}\n`);
    exitCode = r.exitCode;
    if (exitCode !== 0) {
      say(`Stopped: "${argv.join(' ')}" exited with ${exitCode}.\n`);
      break;
    }
  }
  const { text, truncated } = cap.result();
  return { output: text, exitCode, truncated };
}

/**
 * Started detached so it survives brainstem being stopped by it. If it fails and
 * brainstem is still here, that is said at once; otherwise the next start says it.
 */
function reload(deps: SelfUpgradeDeps, pending: Pending, execa: Execa): void {
  const [file, ...args] = deps.cfg.reload;
  if (!file) return;
  deps.kv.set(PENDING_KEY, JSON.stringify(pending));
  deps.logger.info({ command: deps.cfg.reload, ...pending }, 'self-upgrade: reloading');
  const child = execa(file, args, {
    detached: true,
    cleanup: false,
    stdio: 'ignore',
    reject: false,
    env: childEnv(),
    extendEnv: false,
  });
  child.unref();
  void child.then((r) => {
    if (r.exitCode === 0) return;
    deps.kv.set(PENDING_KEY, '');
    const lang = noticeLang(deps.kv);
    const command = deps.cfg.reload.join(' ');
    const why =
      r.code === 'ENOENT'
        ? t(lang, `"${file}" was not found`, `« ${file} » est introuvable`)
        : t(
            lang,
            `it exited with ${r.exitCode ?? r.signal}`,
            `il s'est terminé avec ${r.exitCode ?? r.signal}`,
          );
    deps.notifier.notify({
      kind: 'upgrade',
      text: t(
        lang,
        html`brainstem was upgraded ${pending.from} → ${pending.to} but the reload (${command}) failed: ${why}. Restart it by hand.`,
        html`brainstem a été mis à jour ${pending.from} → ${pending.to} mais le rechargement (${command}) a échoué : ${why}. Redémarre-le à la main.`,
      ),
    });
  });
}

/** At start-up: a reload asked for before this process began means this process is its outcome. */
export async function reportPendingUpgrade(deps: SelfUpgradeDeps): Promise<void> {
  const raw = deps.kv.get(PENDING_KEY);
  if (!raw) return;
  deps.kv.set(PENDING_KEY, '');
  const pending = JSON.parse(raw) as Pending;
  const r = await deps.run(['git', 'rev-parse', '--short', 'HEAD'], { cwd: deps.repo, env: GIT_ENV });
  const head = r.output.trim() || '?';
  const lang = noticeLang(deps.kv);
  deps.notifier.notify({
    kind: 'upgrade',
    text:
      head === pending.to
        ? t(
            lang,
            html`brainstem restarted after its upgrade ${pending.from} → ${pending.to}.`,
            html`brainstem a redémarré après sa mise à jour ${pending.from} → ${pending.to}.`,
          )
        : t(
            lang,
            html`brainstem restarted, but runs ${head} instead of the upgrade target ${pending.to}.`,
            html`brainstem a redémarré, mais tourne sur ${head} au lieu de la cible ${pending.to}.`,
          ),
    dedupeKey: `upgrade:${pending.ts}`,
  });
}
