import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { KvStore } from '../db/index.js';
import { BrainstemError, sayError } from '../errors.js';
import { html } from '../html.js';
import { formatDuration, type Lang, noticeLang, t } from '../i18n.js';
import type { Logger } from '../logger.js';
import type { NoticeChat, NoticeInput, Notifier } from '../notices.js';
import { scrubText } from '../redact.js';
import { type Execa, subprocesses } from '../subprocesses.js';
import { shorten, tailChars } from '../text.js';
import type { ToolsConfig } from './config.js';
import { childEnv, OutputCap, type Runner, ToolRunError } from './exec.js';
import { type AnyTool, defineTool, type ToolContext } from './registry.js';

/**
 * self_upgrade: `check` fetches and lists the commits brainstem is behind;
 * `apply` moves to exactly the upstream commit a check saw (fast-forward only,
 * clean tree only), runs the install and build steps, and reloads brainstem
 * once the answer is delivered. A failed step puts the checkout back where it
 * was and runs the steps there again, so a later restart starts what runs now.
 * The reload is remembered so the restarted brainstem reports how it went.
 * One call runs at a time: two applies (from /api, /mcp, two chats) would run
 * the steps in one checkout at once, and a check's fetch would race them.
 */

const PENDING_KEY = 'self_upgrade_pending';
/** A failed upgrade whose rollback did not finish: checks report it while the checkout stays where it was left. */
const UNFINISHED_KEY = 'self_upgrade_unfinished';
const GIT_ENV = { GIT_TERMINAL_PROMPT: '0' };
/** Files or commits named in one answer: a long list must not bury what to do. */
const MAX_LISTED = 20;
/** The end of a failed step's output, repeated in the summary: a chat shows the end of the output. */
const TAIL_CHARS = 800;

const pendingSchema = z.object({
  from: z.string(),
  to: z.string(),
  ts: z.number(),
  /** The chat (and topic) the apply was asked in, when a chat asked: it is told the outcome too. */
  chat: z.object({ id: z.number(), topicId: z.number().optional() }).optional(),
});
type Pending = z.infer<typeof pendingSchema>;

const unfinishedSchema = z.object({
  /** The commit the checkout was left at (full hash): once it has moved, the note no longer applies. */
  at: z.string(),
  /** What is left to do, in English. */
  note: z.string(),
  /** The same in French, since whoever checks next may read either; absent from a note an English-only brainstem left. */
  fr: z.string().optional(),
});
type Unfinished = z.infer<typeof unfinishedSchema>;

interface Commit {
  hash: string;
  subject: string;
}

/** What `check` returns as data (Telegram's /upgrade reads it). */
interface UpgradeCheck {
  repo: string;
  upstream: string;
  /** The upstream commit this check saw (full hash): `apply` with `to` moves to exactly it. */
  target: string;
  /** The checkout's commit (full hash). */
  head: string;
  behind: number;
  ahead: number;
  /** Upstream commits the checkout lacks, newest first (at most 100). */
  commits: Commit[];
  /** Local commits the upstream lacks, newest first (at most 100): with `behind`, the checkout has diverged. */
  local: Commit[];
  dirty: string[];
  /** What a failed upgrade left behind, when its rollback did not finish. */
  unfinished?: string;
}

/**
 * A step that did not succeed: its command, how it ended, the end of its output.
 * One that did not end by itself (time limit, stopped) carries its error, which is then the answer.
 */
type Failure = { command: string; tail: string } & (
  | { exitCode: number; error?: undefined }
  | { error: ToolRunError; exitCode?: undefined }
);

/**
 * A configured command as the answers show it: a step, a framework upgrade or the reload may carry
 * a secret (`--token …`, `https://user:pass@…`, `Authorization: Bearer …`), and what is shown goes
 * to the chat, to /api and /mcp clients (a model among them) and into the notes later checks repeat.
 */
const shownCommand = (argv: readonly string[]): string => scrubText(argv.join(' '));

/** Text in the reader's language: a note left for later is written in both. */
type Words = (lang: Lang | undefined) => string;

/** How a failed step ended, said after its command. */
const whyOf =
  (f: Failure): Words =>
  (lang) =>
    f.error
      ? t(lang, `did not finish (${f.error.message})`, `n’a pas abouti (${sayError(f.error, 'fr')})`)
      : t(lang, `exited with ${f.exitCode}`, `s’est terminé avec le code ${f.exitCode}`);

export interface SelfUpgradeDeps {
  cfg: ToolsConfig['selfUpgrade'];
  /** The checkout to upgrade: tools.selfUpgrade.repo, else brainstem's own (see ownCheckout). */
  repo: string;
  maxOutputChars: number;
  run: Runner;
  /** Beyond brainstem's own tokens, what the reload command must not see either (configuredSecrets). */
  hiddenEnv: readonly string[];
  kv: KvStore;
  notifier: Notifier;
  /** The chats that get every notice (telegram.notifyChats, else the allowed users). */
  notifyChats: readonly number[];
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

/** The first `max` items, then how many more. */
function listed(items: readonly string[], lang: Lang | undefined, max = MAX_LISTED): string {
  const shown = items.slice(0, max).join(', ');
  const more = items.length - max;
  return more > 0 ? shown + t(lang, `, … and ${more} more`, `, … et ${more} de plus`) : shown;
}

const commitsOf = (log: string): Commit[] =>
  log
    ? log.split('\n').map((l) => {
        const [hash = '', ...subject] = l.split('\t');
        return { hash, subject: subject.join('\t') };
      })
    : [];

/** Where its commands run: the checkout, named by its setting when one is set (a missing one is then a config error). */
const inRepo = (deps: SelfUpgradeDeps) => ({
  cwd: deps.repo,
  env: GIT_ENV,
  ...(deps.cfg.repo ? { cwdSetting: 'tools.selfUpgrade.repo' } : {}),
});

const refused = (message: string) => new BrainstemError('TOOL_REFUSED', message);

/** Why a diverged checkout cannot be fast-forwarded, and what to do about it. */
function divergedText(c: UpgradeCheck, lang: Lang | undefined): string {
  const local = listed(
    c.local.map((x) => `${x.hash} ${shorten(x.subject, 60)}`),
    lang,
    5,
  );
  return t(
    lang,
    `The checkout has ${c.ahead} local commit(s) that ${c.upstream} does not have (${local}), so it cannot fast-forward: rebase them onto ${c.upstream} (git pull --rebase) or drop them (git reset --hard ${c.upstream}) in ${c.repo}, then upgrade again.`,
    `Le dépôt a ${c.ahead} commit(s) local(aux) absent(s) de ${c.upstream} (${local}), il ne peut donc pas simplement avancer : rebasez-les sur ${c.upstream} (git pull --rebase) ou abandonnez-les (git reset --hard ${c.upstream}) dans ${c.repo}, puis relancez la mise à jour.`,
  );
}

function checkText(c: UpgradeCheck, lang: Lang | undefined): string {
  const lines: string[] = [];
  if (c.unfinished) lines.push(c.unfinished);
  if (c.behind > 0) {
    lines.push(
      t(
        lang,
        `${c.behind} new commit(s) on ${c.upstream}:`,
        `${c.behind} nouveau(x) commit(s) sur ${c.upstream} :`,
      ),
      ...c.commits.map((x) => `- ${x.hash} ${x.subject}`),
    );
    if (c.ahead > 0) lines.push(divergedText(c, lang));
  } else if (!c.unfinished) {
    lines.push(
      t(lang, `brainstem is up to date with ${c.upstream}.`, `brainstem est à jour avec ${c.upstream}.`),
    );
  }
  if (c.dirty.length) {
    const files = listed(c.dirty, lang);
    lines.push(
      t(
        lang,
        `The working tree has uncommitted changes: ${files}.`,
        `Le dépôt a des modifications non commitées : ${files}.`,
      ),
    );
  }
  return lines.join('\n');
}

export function selfUpgradeTool(deps: SelfUpgradeDeps): AnyTool {
  const { cfg, run, repo } = deps;
  const git = (args: string[], ctx: ToolContext) =>
    run(['git', '--no-pager', ...args], { ...inRepo(deps), signal: ctx.signal });
  const gitOk = async (args: string[], ctx: ToolContext) => {
    const r = await git(args, ctx);
    if (r.exitCode !== 0) {
      const command = `git ${args.join(' ')}`;
      const output = tailChars(r.output.trim(), 500);
      throw new BrainstemError(
        'TOOL_FAILED',
        t(
          ctx.lang,
          `${command} failed in ${repo}: ${output}`,
          `${command} a échoué dans ${repo} : ${output}`,
        ),
      );
    }
    return r.output.trim();
  };

  /** The note a failed rollback left, unless the checkout has been moved since (by hand). */
  const unfinishedAt = (head: string, lang: Lang | undefined): string | undefined => {
    const u = deps.kv.getJson(UNFINISHED_KEY, unfinishedSchema);
    if (!u) return undefined;
    if (u.at === head) return t(lang, u.note, u.fr ?? u.note);
    deps.kv.set(UNFINISHED_KEY, '');
    return undefined;
  };

  const check = async (ctx: ToolContext): Promise<UpgradeCheck> => {
    await gitOk(['fetch', '--quiet'], ctx);
    const upstream = await git(['rev-parse', '--abbrev-ref', '--symbolic-full-name', '@{u}'], ctx);
    if (upstream.exitCode !== 0) {
      throw refused(
        t(
          ctx.lang,
          `The current branch of ${repo} has no upstream to upgrade from (git branch --set-upstream-to).`,
          `La branche courante de ${repo} n’a pas de branche amont d’où se mettre à jour (git branch --set-upstream-to).`,
        ),
      );
    }
    const [log, local, behind, ahead, status, target, head] = await Promise.all([
      gitOk(['log', '--format=%h%x09%s', '-n', '100', 'HEAD..@{u}'], ctx),
      gitOk(['log', '--format=%h%x09%s', '-n', '100', '@{u}..HEAD'], ctx),
      gitOk(['rev-list', '--count', 'HEAD..@{u}'], ctx),
      gitOk(['rev-list', '--count', '@{u}..HEAD'], ctx),
      gitOk(['status', '--porcelain', '--untracked-files=no'], ctx),
      gitOk(['rev-parse', '@{u}'], ctx),
      gitOk(['rev-parse', 'HEAD'], ctx),
    ]);
    const dirty = status
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    const unfinished = unfinishedAt(head, ctx.lang);
    return {
      repo,
      upstream: upstream.output.trim(),
      target,
      head,
      behind: Number(behind),
      ahead: Number(ahead),
      commits: commitsOf(log),
      local: commitsOf(local),
      dirty,
      ...(unfinished ? { unfinished } : {}),
    };
  };

  /** The call running now, if any: another one is refused until it has ended (rollback included). */
  let busy: { action: string; since: number } | undefined;
  const oneAtATime = async <T>(
    action: string,
    lang: Lang | undefined,
    body: () => Promise<T>,
  ): Promise<T> => {
    if (busy) {
      const what =
        busy.action === 'check'
          ? t(lang, 'An upgrade check', 'Une vérification de mise à jour')
          : t(lang, 'An upgrade', 'Une mise à jour');
      const since = formatDuration(Date.now() - busy.since);
      throw refused(
        t(
          lang,
          `${what} is already running (self_upgrade ${busy.action}, started ${since} ago): wait for its answer, then try again.`,
          `${what} est déjà en cours (self_upgrade ${busy.action}, lancée il y a ${since}) : attendez sa réponse, puis réessayez.`,
        ),
      );
    }
    busy = { action, since: Date.now() };
    try {
      return await body();
    } finally {
      busy = undefined;
    }
  };

  /**
   * After a failed or stopped step: back to the commit the checkout was on, its
   * steps run again so its install and build match it. Neither is stopped by the
   * caller's signal (a /stop, a shutdown): the owner is left with the old commit
   * installed and built, within the steps' time limits. Says where that leaves
   * things; what it could not put back is remembered for the next check.
   */
  const rollBack = async (
    c: UpgradeCheck,
    from: string,
    failed: Failure,
    log: Transcript,
    lang: Lang | undefined,
  ) => {
    const to = c.commits[0]?.hash ?? c.target.slice(0, 12);
    const steps: Words = (l) => cfg.steps.map(shownCommand).join(t(l, ', then ', ', puis '));
    const why = whyOf(failed);
    const lines = [
      t(
        lang,
        `Upgrade ${from} → ${to} failed: "${failed.command}" ${why(lang)}.`,
        `La mise à jour ${from} → ${to} a échoué : « ${failed.command} » ${why(lang)}.`,
      ),
      ...(failed.tail ? [t(lang, 'Its last lines:', 'Ses dernières lignes :'), failed.tail] : []),
    ];
    /** What is left to do, for the next checks. */
    const remember = (at: string, note: Words) =>
      deps.kv.set(
        UNFINISHED_KEY,
        JSON.stringify({ at, note: note('en'), fr: note('fr') } satisfies Unfinished),
      );
    const leave = (at: string, note: Words) => {
      remember(at, note);
      lines.push(note(lang));
    };
    const head = await run(['git', 'rev-parse', 'HEAD'], inRepo(deps));
    let rolledBack = false;
    if (head.output.trim() === c.head) {
      lines.push(
        t(
          lang,
          `Nothing was changed: the checkout is still at ${from}.`,
          `Rien n’a changé : le dépôt est toujours à ${from}.`,
        ),
      );
    } else {
      log.say(t(lang, `Rolling back to ${from}:\n`, `Retour à ${from} :\n`));
      const reset = await log.run([['git', 'reset', '--hard', c.head]]);
      if (reset) {
        const resetWhy = whyOf(reset);
        leave(head.output.trim(), (l) =>
          t(
            l,
            `The last upgrade ${from} → ${to} failed at "${failed.command}", and its rollback failed too ("${reset.command}" ${resetWhy(l)}): the checkout is at ${to}, not installed or built. brainstem still runs ${from}, but a restart would start ${to}: before it restarts, run "git reset --hard ${from}" and then ${steps(l)} in ${repo}.`,
            `La dernière mise à jour ${from} → ${to} a échoué à « ${failed.command} », et son retour en arrière aussi (« ${reset.command} » ${resetWhy(l)}) : le dépôt est à ${to}, ni installé ni compilé. brainstem tourne toujours sur ${from}, mais un redémarrage lancerait ${to} : avant qu’il redémarre, lancez « git reset --hard ${from} » puis ${steps(l)} dans ${repo}.`,
          ),
        );
      } else {
        const incomplete =
          (stepsWhy: Words): Words =>
          (l) =>
            t(
              l,
              `The last upgrade ${from} → ${to} failed at "${failed.command}"; the checkout was put back at ${from}, but ${stepsWhy(l)} there. brainstem still runs ${from}, but its install or build in ${repo} is incomplete: run ${steps(l)} there before it restarts.`,
              `La dernière mise à jour ${from} → ${to} a échoué à « ${failed.command} » ; le dépôt a été remis à ${from}, où ${stepsWhy(l)}. brainstem tourne toujours sur ${from}, mais son installation ou sa compilation dans ${repo} est incomplète : lancez-y ${steps(l)} avant qu’il redémarre.`,
            );
        // Noted before the steps run: should brainstem exit meanwhile (its children die with it),
        // the next check still says what is left to do.
        remember(
          c.head,
          incomplete((l) =>
            t(
              l,
              'its steps were cut short (brainstem stopped during them)',
              'ses étapes ont été interrompues (brainstem s’est arrêté pendant)',
            ),
          ),
        );
        const again = await log.run(cfg.steps);
        if (again) {
          const againWhy = whyOf(again);
          leave(
            c.head,
            incomplete((l) =>
              t(l, `"${again.command}" ${againWhy(l)}`, `« ${again.command} » ${againWhy(l)}`),
            ),
          );
        } else {
          deps.kv.set(UNFINISHED_KEY, '');
          rolledBack = true;
          lines.push(
            t(
              lang,
              `Rolled back to ${from} and ran its steps again: brainstem keeps running ${from}. Upgrade again once ${to} is fixed.`,
              `Retour à ${from}, dont les étapes ont été relancées : brainstem continue de tourner sur ${from}. Relancez la mise à jour une fois ${to} corrigé.`,
            ),
          );
        }
      }
    }
    log.say(`\n${lines.join('\n')}\n`);
    const { output, truncated } = log.result();
    const data = { ...c, upgraded: false, rolledBack, failed: failed.command };
    if (failed.error) {
      // Typed by what runCommand throws; only its output is replaced by the whole story.
      const code = failed.error.code as ConstructorParameters<typeof ToolRunError>[0];
      throw new ToolRunError(code, failed.error.message, output, truncated, failed.error.fr);
    }
    return { output, exitCode: failed.exitCode, truncated, data };
  };

  return defineTool({
    name: 'self_upgrade',
    description:
      '`check`: fetches and lists the commits brainstem is behind. `apply`: moves to the upstream commit (`to`, from a check; fast-forward, clean tree only), installs, builds and reloads brainstem; a failed step is rolled back. `framework` runs a configured upgrade of the rest of the stack (`name`).',
    mutating: (input) => input.action !== 'check',
    authorize: (input) => {
      if (input.action !== 'framework') return;
      const names = Object.keys(cfg.framework);
      // Own keys only: `constructor` or `__proto__` would find what every object inherits.
      if (!input.name || !Object.hasOwn(cfg.framework, input.name)) {
        throw new BrainstemError(
          names.length ? 'TOOL_FORBIDDEN' : 'TOOL_NOT_CONFIGURED',
          names.length
            ? `Unknown framework upgrade "${input.name ?? ''}". Configured: ${names.join(', ')}.`
            : 'No framework upgrade is configured (tools.selfUpgrade.framework in brainstem.json).',
          'name',
          names.length
            ? `Mise à jour du framework inconnue : « ${input.name ?? ''} ». Configurées : ${names.join(', ')}.`
            : 'Aucune mise à jour du framework n’est configurée (tools.selfUpgrade.framework dans brainstem.json).',
        );
      }
    },
    run: (input, ctx) =>
      oneAtATime(input.action, ctx.lang, async () => {
        const { lang } = ctx;
        if (input.action === 'check') {
          const c = await check(ctx);
          return { data: c, output: checkText(c, lang) };
        }
        if (input.action === 'framework') {
          const log = new Transcript(deps, ctx);
          const failed = await log.run(cfg.framework[input.name ?? ''] ?? [], ctx.signal);
          if (failed?.error) throw failed.error;
          if (failed) {
            const why = whyOf(failed)(lang);
            log.say(
              t(lang, `Stopped: "${failed.command}" ${why}.\n`, `Arrêté : « ${failed.command} » ${why}.\n`),
            );
          }
          return { ...log.result(), exitCode: failed?.exitCode ?? 0 };
        }
        const c = await check(ctx);
        if (c.dirty.length > 0) {
          const files = listed(c.dirty, lang);
          throw refused(
            t(
              lang,
              `The working tree of ${repo} has uncommitted changes (${files}); commit or stash them, then upgrade.`,
              `Le dépôt ${repo} a des modifications non commitées (${files}) ; commitez-les ou mettez-les de côté, puis relancez la mise à jour.`,
            ),
          );
        }
        if (input.to && !c.target.startsWith(input.to)) {
          const newest = listed(
            c.commits.map((x) => `${x.hash} ${shorten(x.subject, 60)}`),
            lang,
            3,
          );
          const shown = input.to.slice(0, 12);
          throw refused(
            t(
              lang,
              `${c.upstream} has moved since the check that showed ${shown}: it now has ${c.behind} new commit(s) (${newest}). Nothing was applied: check again to see them all, then apply.`,
              `${c.upstream} a changé depuis la vérification qui montrait ${shown} : il a maintenant ${c.behind} nouveau(x) commit(s) (${newest}). Rien n’a été appliqué : vérifiez à nouveau pour tous les voir, puis appliquez.`,
            ),
          );
        }
        if (c.behind === 0) {
          return {
            data: { ...c, upgraded: false },
            output: t(lang, `Already up to date with ${c.upstream}.`, `Déjà à jour avec ${c.upstream}.`),
          };
        }
        if (c.ahead > 0) throw refused(divergedText(c, lang));
        const from = await gitOk(['rev-parse', '--short', 'HEAD'], ctx);
        const log = new Transcript(deps, ctx);
        // The commit the check saw, not whatever the upstream holds by now.
        const failed = await log.run([['git', 'merge', '--ff-only', c.target], ...cfg.steps], ctx.signal);
        if (failed) return rollBack(c, from, failed, log, lang);
        deps.kv.set(UNFINISHED_KEY, '');
        const to = await gitOk(['rev-parse', '--short', 'HEAD'], ctx);
        const reloading = shownCommand(cfg.reload);
        log.say(
          t(
            lang,
            `\nUpgraded ${from} → ${to}; reloading brainstem (${reloading}).`,
            `\nMis à jour ${from} → ${to} ; rechargement de brainstem (${reloading}).`,
          ),
        );
        const { execa } = await subprocesses();
        return {
          ...log.result(),
          exitCode: 0,
          data: { ...c, upgraded: true, from, to },
          afterDelivery: () =>
            reload(deps, { from, to, ts: Date.now(), ...(ctx.chat ? { chat: ctx.chat } : {}) }, execa),
        };
      }),
  });
}

/** Commands run in order in one capped output, streamed as they go. */
class Transcript {
  private readonly cap: OutputCap;

  constructor(
    private readonly deps: SelfUpgradeDeps,
    private readonly ctx: ToolContext,
  ) {
    this.cap = new OutputCap(deps.maxOutputChars);
  }

  say(text: string): void {
    this.cap.push(text);
    this.ctx.onOutput?.(text);
  }

  /** Runs until one fails, which it returns; `signal` absent, nothing stops them but their time limit. */
  async run(commands: readonly string[][], signal?: AbortSignal): Promise<Failure | undefined> {
    for (const argv of commands) {
      const command = shownCommand(argv);
      this.say(`$ ${command}\n`);
      try {
        const r = await this.deps.run(argv, {
          ...inRepo(this.deps),
          ...(signal ? { signal } : {}),
          onOutput: this.ctx.onOutput,
          lang: this.ctx.lang,
        });
        this.cap.push(r.output.endsWith('\n') || !r.output ? r.output : `${r.output}\n`);
        if (r.exitCode !== 0) {
          return { command, tail: tailOf(r.output), exitCode: r.exitCode };
        }
      } catch (err) {
        if (!(err instanceof ToolRunError)) throw err;
        this.cap.push(err.output.endsWith('\n') || !err.output ? err.output : `${err.output}\n`);
        return { command, tail: tailOf(err.output), error: err };
      }
    }
    return undefined;
  }

  result(): { output: string; truncated: boolean } {
    const { text, truncated } = this.cap.result();
    return { output: text, truncated };
  }
}

const tailOf = (output: string) => tailChars(output.trimEnd(), TAIL_CHARS);

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
    env: childEnv({}, deps.hiddenEnv),
    extendEnv: false,
  });
  child.unref();
  void child.then((r) => {
    if (r.exitCode === 0) return;
    deps.kv.set(PENDING_KEY, '');
    const lang = noticeLang(deps.kv);
    const command = shownCommand(deps.cfg.reload);
    const why =
      r.code === 'ENOENT'
        ? t(lang, `"${file}" was not found`, `« ${file} » est introuvable`)
        : t(
            lang,
            `it exited with ${r.exitCode ?? r.signal}`,
            `il s’est terminé avec ${r.exitCode ?? r.signal}`,
          );
    tell(deps, pending, {
      kind: 'upgrade',
      text: t(
        lang,
        html`brainstem was upgraded ${pending.from} → ${pending.to} but the reload (${command}) failed: ${why}. Restart it by hand.`,
        html`brainstem a été mis à jour ${pending.from} → ${pending.to} mais le rechargement (${command}) a échoué : ${why}. Redémarrez-le à la main.`,
      ),
    });
  });
}

/**
 * An upgrade's outcome, for the notify chats, and for the chat that asked when it is not one of
 * them: told "reloading", it would otherwise never hear how the restart went.
 */
function tell(deps: SelfUpgradeDeps, pending: Pending, notice: NoticeInput): void {
  deps.notifier.notify(notice);
  const chat: NoticeChat | undefined = pending.chat;
  if (!chat || deps.notifyChats.includes(chat.id)) return;
  const { dedupeKey } = notice;
  deps.notifier.notify({ ...notice, chat, ...(dedupeKey ? { dedupeKey: `${dedupeKey}:chat` } : {}) });
}

/** At start-up: a reload asked for before this process began means this process is its outcome. */
export async function reportPendingUpgrade(deps: SelfUpgradeDeps): Promise<void> {
  const pending = deps.kv.getJson(PENDING_KEY, pendingSchema);
  if (!pending) return;
  const r = await deps.run(['git', 'rev-parse', '--short', 'HEAD'], inRepo(deps));
  const head = r.output.trim() || '?';
  const lang = noticeLang(deps.kv);
  tell(deps, pending, {
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
  // Forgotten once the notice is recorded, not before: a stop in between (the rev-parse) would lose
  // it, and told twice it is not, its dedupe key being taken.
  deps.kv.set(PENDING_KEY, '');
}
