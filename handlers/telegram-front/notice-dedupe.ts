import type { BrainError } from '../../brains/types.js';
import type { Core } from '../../src/core.js';
import { noticeLang, t } from '../../src/i18n.js';
import { type NoticeKind, PROXY_TAG } from '../../src/notices.js';
import type { OutgoingRewrite } from './routes.js';

/**
 * A `⚙️ [proxy]` notice reaches a chat once. When a Claude turn OpenClaw asked
 * for fails on its credentials or its usage limit, brainstem says so twice:
 * in the answer it streams to OpenClaw (so a chat that is not a notify chat
 * learns why) and as a notice sent straight to the notify chats. OpenClaw then
 * posts its answer, notice included, through the front. For a notify chat, a
 * paragraph of that answer which is such a notice (the same text as a notice
 * brainstem recorded, or the spoken form of a brain failure whose notice was
 * recorded) is taken out before the call reaches Telegram. If nothing else is
 * left, the message becomes one short line pointing at the notice: OpenClaw
 * still gets a real message it may edit or delete later, and the chat does
 * not read the notice twice.
 */

/** Notices and failures older than this no longer make a paragraph a repeat. */
const RECENT_MS = 24 * 3_600_000;
/** The failures brainstem both tells in the answer and sends as a notice, with that notice's kind. */
const NOTICE_OF: Partial<Record<BrainError['kind'], NoticeKind>> = {
  auth: 'auth',
  usage_limit: 'usage_limit',
};
const PARAGRAPH_BREAK = /(\n[ \t]*\n\s*)/;

export class NoticeDedupe implements OutgoingRewrite {
  readonly methods: ReadonlySet<string> = new Set(['sendmessage', 'editmessagetext']);
  /** The spoken form of recent brain failures (plain text) → the kind of their notice. */
  private readonly spoken = new Map<string, { kind: NoticeKind; at: number }>();
  private readonly onBrainError = ({ error }: { error: BrainError }) => {
    const kind = NOTICE_OF[error.kind];
    // The credit and the budgets stop a turn without a usage-limit notice (src/usage-limit.ts): the
    // answer alone tells why, so it is never taken out.
    if (!kind || (error.kind === 'usage_limit' && error.limit !== undefined)) return;
    const now = Date.now();
    this.spoken.set(plain(error.message), { kind, at: now });
    for (const [text, s] of this.spoken) if (now - s.at > RECENT_MS) this.spoken.delete(text);
  };

  constructor(
    private readonly core: Core,
    private readonly chats: ReadonlySet<number>,
  ) {
    core.chat.on('brainError', this.onBrainError);
  }

  close(): void {
    this.core.chat.off('brainError', this.onBrainError);
  }

  rewrite(_method: string, contentType: string, body: Buffer): Buffer | undefined {
    if (!body.includes('[proxy]') && !body.includes('%5Bproxy%5D')) return undefined;
    const form = contentType.toLowerCase().startsWith('application/x-www-form-urlencoded');
    let params: Record<string, unknown>;
    try {
      params = form
        ? Object.fromEntries(new URLSearchParams(body.toString('utf8')))
        : (JSON.parse(body.toString('utf8')) as Record<string, unknown>);
    } catch {
      return undefined; // Telegram will say what is wrong with it
    }
    if (typeof params.text !== 'string' || !this.chats.has(Number(params.chat_id))) return undefined;
    const entities = typeof params.entities === 'string' ? safeArray(params.entities) : params.entities;
    const stripped = this.strip(
      params.text,
      Array.isArray(entities) ? entities : undefined,
      params.parse_mode,
    );
    if (!stripped) return undefined;
    const next: Record<string, unknown> = { ...params, text: stripped.text };
    if (stripped.entities) next.entities = form ? JSON.stringify(stripped.entities) : stripped.entities;
    else delete next.entities;
    return Buffer.from(
      form ? new URLSearchParams(next as Record<string, string>).toString() : JSON.stringify(next),
    );
  }

  /** The text without its repeated notices (entities moved to match), or undefined when none is there. */
  private strip(
    text: string,
    entities: Entity[] | undefined,
    parseMode: unknown,
  ): { text: string; entities: Entity[] | undefined } | undefined {
    const parts = text.split(PARAGRAPH_BREAK);
    const isRepeat = this.repeats();
    /** [start, end) ranges cut out of the text. */
    const cuts: [number, number][] = [];
    let pos = 0;
    for (let i = 0; i < parts.length; i += 2) {
      const para = parts[i] ?? '';
      const start = pos;
      pos += para.length + (parts[i + 1]?.length ?? 0);
      if (!plain(para).startsWith(PROXY_TAG) || !isRepeat(plain(para))) continue;
      // Cut only where no element is open, and only a paragraph that closes what it opens.
      if (parseMode === 'HTML' && !(balanced(text.slice(0, start)) && balanced(para))) continue;
      // The paragraph goes with the break before it (or after it, for the first one).
      const before = parts[i - 1]?.length ?? 0;
      cuts.push(i > 0 ? [start - before, start + para.length] : [start, pos]);
    }
    if (cuts.length === 0) return undefined;
    let kept = '';
    let from = 0;
    for (const [a, b] of cuts) {
      kept += text.slice(from, a);
      from = b;
    }
    kept += text.slice(from);
    if (!kept.trim()) {
      const lang = noticeLang(this.core.kv);
      return {
        text: t(lang, `${PROXY_TAG} (notice sent above)`, `${PROXY_TAG} (avis envoyé plus haut)`),
        entities: undefined,
      };
    }
    return { text: kept, entities: entities && moveEntities(entities, cuts) };
  }

  /** Whether a plain paragraph repeats a notice recorded (or about to be sent) for the notify chats. */
  private repeats(): (paragraph: string) => boolean {
    const since = Date.now() - RECENT_MS;
    const notices = this.core.notifier.recent(50).filter((n) => n.ts >= since);
    const texts = new Set(notices.map((n) => plain(n.text)));
    const kinds = new Set(notices.map((n) => n.kind));
    return (p) => {
      if (texts.has(p)) return true;
      const s = this.spoken.get(p);
      return s !== undefined && s.at >= since && kinds.has(s.kind);
    };
  }
}

interface Entity {
  offset: number;
  length: number;
  [key: string]: unknown;
}

/** Entities inside a cut are dropped, the others moved back by what was cut before them. */
function moveEntities(entities: Entity[], cuts: [number, number][]): Entity[] {
  return entities.flatMap((e) => {
    const end = e.offset + e.length;
    if (cuts.some(([a, b]) => e.offset < b && end > a)) return [];
    const shift = cuts.filter(([, b]) => b <= e.offset).reduce((sum, [a, b]) => sum + (b - a), 0);
    return [{ ...e, offset: e.offset - shift }];
  });
}

/** The words of a message, whatever its markup: tags and markdown marks gone, entities decoded, spaces folded. */
function plain(text: string): string {
  return text
    .replace(/<[^>]*>/g, '')
    .replace(/&(lt|gt|amp|quot|#39|#x27);/g, (_m, e: string) =>
      e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'amp' ? '&' : e === 'quot' ? '"' : "'",
    )
    .replace(/[`*_~]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** No HTML element is left open before this point (a cut there cannot break the markup). */
function balanced(html: string): boolean {
  const opened = html.match(/<[a-z][^>]*>/gi)?.length ?? 0;
  const closed = html.match(/<\/[a-z][^>]*>/gi)?.length ?? 0;
  return opened === closed;
}

function safeArray(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
