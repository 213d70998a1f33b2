import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * A concise system prompt for a small local model, built from the persona
 * files of an OpenClaw-style workspace instead of the framework's ~50 KB
 * prompt that such a model cannot use:
 *
 *   SOUL.md    whole
 *   AGENTS.md  only the sections meant for every mode or for this mode
 *   MEMORY.md  whole
 *
 * Missing or empty files are skipped. Each file is read again only when its
 * mtime or size changes, so a turn costs three `stat` calls.
 *
 * Section rule for AGENTS.md: a section is an ATX markdown heading (`#` to
 * `######`) with everything under it up to the next heading of the same or a
 * higher level. A heading that carries `[ALL MODES]` or `[<MODE ID> MODE]`
 * (case-insensitive, e.g. `## Tone [LOCAL MODE]`) is kept with its content;
 * a heading that carries only other `[… MODE]` tags is dropped with its
 * content. An untagged heading inherits the decision of the section it sits
 * in; text outside any tagged section is dropped. Lines inside fenced code
 * blocks are never headings.
 */
export class PersonaPrompt {
  private readonly files = new Map<string, { mtimeMs: number; size: number; text: string }>();

  constructor(
    private readonly dir: string,
    private readonly modeId: string,
  ) {}

  /** The prompt, or undefined when the directory holds none of the files. */
  async build(): Promise<string | undefined> {
    const [soul, agents, memory] = await Promise.all([
      this.read('SOUL.md'),
      this.read('AGENTS.md'),
      this.read('MEMORY.md'),
    ]);
    const parts = [soul, agents === undefined ? undefined : filterModeSections(agents, this.modeId), memory]
      .map((p) => p?.trim())
      .filter((p): p is string => Boolean(p));
    return parts.length > 0 ? parts.join('\n\n') : undefined;
  }

  private async read(name: string): Promise<string | undefined> {
    const file = path.join(this.dir, name);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) {
      this.files.delete(name);
      return undefined;
    }
    const cached = this.files.get(name);
    if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.text;
    const text = await readFile(file, 'utf8');
    this.files.set(name, { mtimeMs: st.mtimeMs, size: st.size, text });
    return text;
  }
}

const HEADING = /^(#{1,6})\s/;
const FENCE = /^\s*(```|~~~)/;
const TAG = /\[([^\]]+?)\s+MODES?\]/gi;

/** Keeps the AGENTS.md sections for every mode and for `modeId` (rule in the class comment). */
export function filterModeSections(markdown: string, modeId: string): string {
  const own = modeId.toUpperCase();
  // Open sections, outermost first, with the decision each one took.
  const stack: { level: number; keep: boolean }[] = [];
  const out: string[] = [];
  let inFence = false;
  for (const line of markdown.split(/\r?\n/)) {
    if (FENCE.test(line)) inFence = !inFence;
    const heading = inFence ? null : HEADING.exec(line);
    if (heading?.[1]) {
      const level = heading[1].length;
      while (stack.length > 0 && (stack.at(-1)?.level ?? 0) >= level) stack.pop();
      const tags = [...line.matchAll(TAG)].map((m) => (m[1] ?? '').trim().toUpperCase());
      const inherited = stack.at(-1)?.keep ?? false;
      const keep = tags.length > 0 ? tags.some((t) => t === 'ALL' || t === own) : inherited;
      stack.push({ level, keep });
    }
    if (stack.at(-1)?.keep) out.push(line);
  }
  return out.join('\n');
}
