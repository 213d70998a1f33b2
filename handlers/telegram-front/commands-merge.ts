import { z } from 'zod';
import type { Db } from '../../src/db/index.js';
import type { KeptWrites } from '../../src/db/kept-writes.js';
import type { Logger } from '../../src/logger.js';
import { headChars } from '../../src/text.js';
import { apiError, apiResult, type BotApiAnswer, redactBotPaths } from './bot-api.js';

/**
 * One command menu for two owners. Telegram keeps one list per scope and
 * language, and a client shows the most specific list that exists: so a list
 * brainstem sets (its French menu, say) would hide OpenClaw's from French
 * users, and OpenClaw's would hide brainstem's. Each owner's lists are kept
 * (SQLite) as it set them; what Telegram gets, for every scope either owner
 * set crossed with every language either owner set (OpenClaw's group list
 * with brainstem's French one gives a French group list), is brainstem's
 * effective list there followed by OpenClaw's, without duplicates, within
 * Telegram's 100 commands; a key is left out (deleted at Telegram) when
 * Telegram's own fallback already shows that list there. An OpenClaw
 * command whose name brainstem answers is shown as `oc_<name>` (the inbound
 * split gives `/oc_<name>` back to OpenClaw as `/<name>`).
 *
 * getMyCommands answers OpenClaw with its own list, as Telegram would if it
 * were alone, so its change detection keeps working.
 *
 * A list Telegram did not take for a passing reason (no answer, flood control,
 * its own 5xx) is sent again later, after a backoff (429: its retry_after when
 * longer), without waiting for another change: brainstem's own menu is set only
 * at start, and a network blink then would leave Telegram's menu wrong until
 * the next restart. What it refuses (any other 4xx) is not: it would refuse the
 * same list again.
 */

export type Owner = 'brainstem' | 'openclaw';

const MAX_COMMANDS = 100;
const MAX_DESCRIPTION = 256;
/** The first wait before a list Telegram did not take is sent again; it doubles while it keeps failing. */
const RETRY_FIRST_MS = 3_000;
const RETRY_MAX_MS = 10 * 60_000;
/** OpenClaw's commands that clash with brainstem's are typed (and shown) with this prefix. */
export const OPENCLAW_ALIAS_PREFIX = 'oc_';

/** The part of Telegram's error answer that says when to call again (flood control). */
const retryAfterSchema = z.object({ parameters: z.object({ retry_after: z.number() }) });
/** The part of Telegram's error answer that says the chat named is now a supergroup, and its id. */
const migratedSchema = z.object({ parameters: z.object({ migrate_to_chat_id: z.number().int() }) });

const commandSchema = z.object({ command: z.string(), description: z.string() });
export type MenuCommand = z.infer<typeof commandSchema>;

const numericText = z
  .string()
  .regex(/^-?\d+$/)
  .transform(Number);

const scopeSchema = z.looseObject({
  type: z.enum([
    'default',
    'all_private_chats',
    'all_group_chats',
    'all_chat_administrators',
    'chat',
    'chat_administrators',
    'chat_member',
  ]),
  // Telegram takes "123" for 123 (one chat, one key); any other text is a @username.
  chat_id: z.union([z.number(), numericText, z.string()]).optional(),
  user_id: z.union([z.number(), numericText]).optional(),
});
type Scope = z.infer<typeof scopeSchema>;

/** Bodies may be form fields: a JSON value arrives as its text. */
const jsonField = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }, schema);

const keySchema = z.object({
  scope: jsonField(scopeSchema).optional(),
  language_code: z.string().optional(),
});
const setSchema = keySchema.extend({ commands: jsonField(z.array(commandSchema).max(MAX_COMMANDS)) });

interface Key {
  /** The scope as canonical JSON. */
  scope: string;
  lang: string;
}

const canonical = (s: Scope | undefined): string =>
  JSON.stringify({
    type: s?.type ?? 'default',
    ...(s?.chat_id !== undefined ? { chat_id: s.chat_id } : {}),
    ...(s?.user_id !== undefined ? { user_id: s.user_id } : {}),
  });
const keyString = (k: Key) => `${k.scope}|${k.lang}`;

/** Where Telegram looks next when a scope has no list (non-administrators; see BotCommandScope). */
function parentOf(scope: string): string | undefined {
  const s = JSON.parse(scope) as Scope;
  switch (s.type) {
    case 'chat_member':
    case 'chat_administrators':
      return canonical({ type: 'chat', chat_id: s.chat_id });
    case 'chat':
      return canonical({
        type: typeof s.chat_id === 'number' && s.chat_id > 0 ? 'all_private_chats' : 'all_group_chats',
      });
    case 'all_chat_administrators':
      return canonical({ type: 'all_group_chats' });
    case 'all_group_chats':
    case 'all_private_chats':
      return canonical({ type: 'default' });
    default:
      return undefined;
  }
}

/** The keys Telegram looks at, in its order, for a user whose scope and language are the key's. */
function* lookups(key: Key): Generator<Key> {
  for (let scope: string | undefined = key.scope; scope !== undefined; scope = parentOf(scope)) {
    if (key.lang) yield { scope, lang: key.lang };
    yield { scope, lang: '' };
  }
}

/** How far a scope is from the default one: a key's fallbacks all come before it in this order. */
function depth(scope: string): number {
  let n = 0;
  for (let s = parentOf(scope); s !== undefined; s = parentOf(s)) n++;
  return n;
}

export class CommandsMerge {
  /** What Telegram holds per key as last sent (null: deleted); an unchanged merge is not sent again. */
  private readonly sent = new Map<string, { key: Key; content: string | null }>();
  /**
   * Keys whose last call failed for a passing reason, with the wait Telegram asked for (ms): sent
   * again by a later sync, the retry's or another change's; a sync that finds Telegram holding the
   * plan's list there (an OpenClaw change put back, say) takes the key out.
   */
  private readonly unsent = new Map<string, { key: Key; waitMs: number }>();
  private retryMs = RETRY_FIRST_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Db,
    /** brainstem's own menu is set at start, when another process may hold the database. */
    private readonly kept: KeptWrites,
    private readonly send: (method: string, params: object) => Promise<BotApiAnswer>,
    private readonly logger: Logger,
    /** The command names brainstem answers, for renaming OpenClaw's clashes. */
    private readonly ownNames: ReadonlySet<string>,
    /** Tells the owner which of OpenClaw's commands a full menu leaves out (`/name`s). */
    private readonly leftOut: (commands: string[]) => void,
  ) {}

  /**
   * brainstem's own menu (the default scope, one list per language; '' = every other language),
   * stored, then the merged lists sent. Another process holding the database at start (a
   * backup) keeps the store in memory until it is gone (KeptWrites); the lists are sent once
   * it is written. Telegram's failures are logged (see call), and what it did not take for a
   * passing reason is sent again later (retryUnsent).
   */
  setOwn(lists: { lang: string; commands: MenuCommand[] }[]): void {
    this.kept.run(
      "brainstem's command menu",
      () => {
        const held = this.keys();
        this.db.transaction(() => {
          this.db.prepare("DELETE FROM front_commands WHERE owner = 'brainstem'").run();
          for (const l of lists)
            this.store('brainstem', { scope: canonical(undefined), lang: l.lang }, l.commands);
        })();
        this.resync(held);
      },
      { latest: true },
    );
  }

  /**
   * A basic group upgraded to a supergroup (`from` → `to`): the lists set for the group (its
   * scope, its administrators', one member's) move to the new id, as brainstem's conversation of
   * the group does (route/direct.ts). Telegram refuses every call naming the old id (400 with
   * migrate_to_chat_id): left there, the list was sent to it again at every start and refused, and
   * the supergroup, the same group to its members, showed none. OpenClaw's chat follows the
   * upgrade too, so it reads the list back under the new id; one it set there already stays.
   */
  follow(from: number, to: number): Promise<void> {
    return this.serial(async () => {
      const moved = this.db.transaction(() => {
        const rows = this.db
          .prepare<[], { owner: Owner; scope: string; lang: string; commands: string }>(
            'SELECT owner, scope, lang, commands FROM front_commands',
          )
          .all()
          .filter((r) => chatOf(r.scope) === from);
        for (const r of rows) {
          const scope = canonical({ ...(JSON.parse(r.scope) as Scope), chat_id: to });
          this.db
            .prepare(
              'INSERT INTO front_commands (owner, scope, lang, commands) VALUES (?, ?, ?, ?) ON CONFLICT(owner, scope, lang) DO NOTHING',
            )
            .run(r.owner, scope, r.lang, r.commands);
          this.db
            .prepare('DELETE FROM front_commands WHERE owner = ? AND scope = ? AND lang = ?')
            .run(r.owner, r.scope, r.lang);
        }
        return rows.length;
      })();
      if (moved === 0) return;
      // What Telegram held under the old id is out of reach (it refuses the id): not deleted there.
      for (const map of [this.sent, this.unsent])
        for (const [id, { key }] of map) if (chatOf(key.scope) === from) map.delete(id);
      this.logger.info(
        { chatId: from, newChatId: to },
        'a group became a supergroup: its command menu follows',
      );
      await this.sync(undefined, []);
    });
  }

  /** The front closes: a retry waiting is dropped, and none is planned any more. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** The plan as it stands sent, in turn with the other changes (see sync for `held`). */
  private resync(held: Key[]): void {
    this.serial(() => this.sync(undefined, held)).catch((err: Error) =>
      this.logger.warn({ err: err.message }, 'the merged command menu was not set'),
    );
  }

  /** OpenClaw's setMyCommands: stored, then the merged list for that scope and language sent to Telegram. */
  set(params: Record<string, unknown>): Promise<BotApiAnswer> {
    const p = setSchema.safeParse(params);
    if (!p.success) return Promise.resolve(badRequest(p.error));
    const key = { scope: canonical(p.data.scope), lang: p.data.language_code ?? '' };
    return this.serial(() => this.change(key, p.data.commands));
  }

  deleteList(params: Record<string, unknown>): Promise<BotApiAnswer> {
    const p = keySchema.safeParse(params);
    if (!p.success) return Promise.resolve(badRequest(p.error));
    const key = { scope: canonical(p.data.scope), lang: p.data.language_code ?? '' };
    return this.serial(() => this.change(key, undefined));
  }

  /**
   * OpenClaw's list for a key set (or deleted, undefined) and sent. What
   * Telegram refuses changes nothing, as at Telegram: the list before is put
   * back (getMyCommands keeps answering it, and it is what later merges send).
   */
  private async change(key: Key, commands: MenuCommand[] | undefined): Promise<BotApiAnswer> {
    const before = this.exact('openclaw', key);
    const held = this.keys();
    this.put(key, commands);
    const answer = await this.sync(key, held);
    if (answer.status !== 200) {
      const tried = this.keys();
      this.put(key, before);
      await this.sync(undefined, tried);
    }
    return answer;
  }

  private put(key: Key, commands: MenuCommand[] | undefined): void {
    if (commands) this.store('openclaw', key, commands);
    else
      this.db
        .prepare("DELETE FROM front_commands WHERE owner = 'openclaw' AND scope = ? AND lang = ?")
        .run(key.scope, key.lang);
  }

  get(params: Record<string, unknown>): BotApiAnswer {
    const p = keySchema.safeParse(params);
    if (!p.success) return badRequest(p.error);
    return apiResult(
      this.exact('openclaw', { scope: canonical(p.data.scope), lang: p.data.language_code ?? '' }) ?? [],
    );
  }

  /**
   * Sends every key of the plan whose list changed, and deletes at Telegram
   * every other key it may hold: one sent before or left unsent, one of the
   * keys before this change (`held`: after a restart nothing is known sent),
   * the one asked about. Returns Telegram's answer for `changed` (what the
   * caller asked about), or ok when Telegram already had that.
   */
  private async sync(changed: Key | undefined, held: Key[]): Promise<BotApiAnswer> {
    const plan = this.plan();
    const others = new Map<string, Key>();
    const known = [...this.sent.values(), ...this.unsent.values()].map((s) => s.key);
    for (const key of [...held, ...this.keys(), ...known]) {
      if (!plan.has(keyString(key))) others.set(keyString(key), key);
    }
    if (changed && !plan.has(keyString(changed))) others.set(keyString(changed), changed);
    let answer = apiResult(true);
    const note = (key: Key, result: BotApiAnswer) => {
      if (changed && keyString(key) === keyString(changed)) answer = result;
    };
    for (const p of plan.values()) note(p.key, await this.call('setMyCommands', p.key, p.commands));
    for (const key of others.values()) note(key, await this.call('deleteMyCommands', key, undefined));
    return answer;
  }

  /**
   * Every scope either owner holds crossed with every language either holds,
   * each key's fallbacks before it: a French user in a group must get the
   * merge of brainstem's French list and OpenClaw's group list even though
   * neither owner set that key.
   */
  private keys(): Key[] {
    const rows = this.db.prepare<[], Key>('SELECT DISTINCT scope, lang FROM front_commands').all();
    const scopes = [...new Set(rows.map((r) => r.scope))];
    const langs = [...new Set(rows.map((r) => r.lang))];
    return scopes
      .flatMap((scope) => langs.map((lang) => ({ scope, lang })))
      .sort(
        (a, b) =>
          depth(a.scope) - depth(b.scope) ||
          Number(a.lang !== '') - Number(b.lang !== '') ||
          keyString(a).localeCompare(keyString(b)),
      );
  }

  /**
   * The lists Telegram should hold: a key's merge, unless what Telegram
   * would show there without it (its next key in the plan) is the same list.
   */
  private plan(): Map<string, { key: Key; commands: MenuCommand[] }> {
    const plan = new Map<string, { key: Key; commands: MenuCommand[] }>();
    for (const key of this.keys()) {
      const commands = this.merged(key);
      const fallback = [...lookups(key)].slice(1).find((k) => plan.has(keyString(k)));
      const shown = fallback ? plan.get(keyString(fallback))?.commands : [];
      if (JSON.stringify(commands) !== JSON.stringify(shown)) plan.set(keyString(key), { key, commands });
    }
    return plan;
  }

  /**
   * One call to Telegram for a key, skipped when Telegram already holds that; failures are logged,
   * and a passing one (no answer, 429, 5xx) leaves the key unsent, for a retry.
   */
  private async call(method: string, key: Key, commands: MenuCommand[] | undefined): Promise<BotApiAnswer> {
    const id = keyString(key);
    const content = commands === undefined ? null : JSON.stringify(commands);
    if (this.sent.get(id)?.content === content) {
      this.unsent.delete(id);
      return apiResult(true);
    }
    const params = {
      ...(commands ? { commands } : {}),
      scope: JSON.parse(key.scope) as Scope,
      ...(key.lang ? { language_code: key.lang } : {}),
    };
    let answer: BotApiAnswer;
    try {
      answer = await this.send(method, params);
    } catch (err) {
      const reason = redactBotPaths((err as Error).message || String(err));
      this.logger.warn({ err: reason, method, key: id }, 'command menu not updated');
      this.unsent.set(id, { key, waitMs: 0 });
      return apiError(502, `Bad Gateway: brainstem could not reach Telegram (${reason})`);
    }
    if (answer.status === 200) this.sent.set(id, { key, content });
    else {
      this.logger.warn(
        { method, key: id, status: answer.status },
        'Telegram refused the merged command menu',
      );
      // A list kept under a group's old id (stored before brainstem followed upgrades, or while
      // the front was off): it follows now, once, rather than being refused at every start.
      const from = chatOf(key.scope);
      const to = migratedTo(answer);
      if (from !== undefined && to !== undefined) void this.follow(from, to);
    }
    if (answer.status === 429 || answer.status >= 500)
      this.unsent.set(id, { key, waitMs: retryAfterMs(answer) });
    else this.unsent.delete(id);
    return answer;
  }

  /** brainstem's list then OpenClaw's, each as Telegram would show it alone, without duplicates, capped. */
  private merged(key: Key): MenuCommand[] {
    const own = this.effective('brainstem', key) ?? [];
    const theirs = (this.effective('openclaw', key) ?? []).map((c) =>
      this.ownNames.has(c.command)
        ? {
            command: `${OPENCLAW_ALIAS_PREFIX}${c.command}`,
            description: headChars(`OpenClaw: ${c.description}`, MAX_DESCRIPTION),
          }
        : c,
    );
    const seen = new Set<string>();
    const all = [...own, ...theirs].filter((c) => !seen.has(c.command) && seen.add(c.command));
    if (all.length > MAX_COMMANDS) {
      const left = all.slice(MAX_COMMANDS).map((c) => `/${c.command}`);
      this.logger.warn(
        { key: keyString(key), left },
        `the command menu holds at most ${MAX_COMMANDS} commands; OpenClaw's last ones are left out of it (they still work when typed)`,
      );
      this.leftOut(left);
    }
    return all.slice(0, MAX_COMMANDS);
  }

  /** The list a client would show if only this owner had set lists. */
  private effective(owner: Owner, key: Key): MenuCommand[] | undefined {
    for (const k of lookups(key)) {
      const list = this.exact(owner, k);
      if (list) return list;
    }
    return undefined;
  }

  private exact(owner: Owner, key: Key): MenuCommand[] | undefined {
    const row = this.db
      .prepare<[Owner, string, string], { commands: string }>(
        'SELECT commands FROM front_commands WHERE owner = ? AND scope = ? AND lang = ?',
      )
      .get(owner, key.scope, key.lang);
    return row ? (JSON.parse(row.commands) as MenuCommand[]) : undefined;
  }

  private store(owner: Owner, key: Key, commands: MenuCommand[]): void {
    this.db
      .prepare(
        'INSERT INTO front_commands (owner, scope, lang, commands) VALUES (?, ?, ?, ?) ON CONFLICT(owner, scope, lang) DO UPDATE SET commands = excluded.commands',
      )
      .run(owner, key.scope, key.lang, JSON.stringify(commands));
  }

  /**
   * One change at a time, so two owners' calls never interleave their sends (a retry is one of
   * them); after each, what it left unsent is planned to be sent again.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = () => fn().finally(() => this.retryUnsent());
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Nothing left unsent resets the backoff. Otherwise one resync, waiting for the backoff (doubled
   * at each retry while something stays unsent) or for what Telegram asked when longer, sends
   * every key unsent by then, or deletes it if the plan no longer has it. It is planned after the
   * change as a whole, so an OpenClaw list that failed and was put back (change) is not retried:
   * its caller has the error, and the retry sends only the plan as it stands.
   */
  private retryUnsent(): void {
    if (this.unsent.size === 0) {
      this.retryMs = RETRY_FIRST_MS;
      return;
    }
    if (this.retryTimer || this.closed) return;
    const delayMs = Math.max(this.retryMs, ...[...this.unsent.values()].map((u) => u.waitMs));
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.logger.warn(
      { keys: [...this.unsent.keys()], delayMs },
      `Telegram did not take the merged command menu; it is sent again in ${Math.ceil(delayMs / 1000)} s`,
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.resync([]);
    }, delayMs);
    this.retryTimer.unref();
  }
}

/** The chat a stored scope names by its id (`chat`, `chat_administrators`, `chat_member`); undefined for others. */
function chatOf(scope: string): number | undefined {
  const id = (JSON.parse(scope) as Scope).chat_id;
  const n = typeof id === 'string' && /^-?\d+$/.test(id) ? Number(id) : id;
  return typeof n === 'number' ? n : undefined;
}

/** The supergroup a refusal names (`parameters.migrate_to_chat_id`), when the chat it was about was upgraded. */
function migratedTo(answer: BotApiAnswer): number | undefined {
  try {
    const p = migratedSchema.safeParse(JSON.parse(answer.body));
    return p.success ? p.data.parameters.migrate_to_chat_id : undefined;
  } catch {
    return undefined;
  }
}

/** The wait a 429 asks for (`parameters.retry_after`, in seconds), in ms; 0 when the answer names none. */
function retryAfterMs(answer: BotApiAnswer): number {
  try {
    const p = retryAfterSchema.safeParse(JSON.parse(answer.body));
    return p.success ? p.data.parameters.retry_after * 1000 : 0;
  } catch {
    // Not JSON: a proxy's error page in front of Telegram.
    return 0;
  }
}

function badRequest(error: z.ZodError): BotApiAnswer {
  const issue = error.issues[0];
  return apiError(
    400,
    `Bad Request: ${issue?.path.join('.') || 'parameters'}: ${issue?.message ?? 'invalid'}`,
  );
}
