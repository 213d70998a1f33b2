import { readFile } from 'node:fs/promises';

/** The most of a document a local model gets inline: its context is small, and the rest is said to be cut. */
export const INLINE_MAX_BYTES = 64 * 1024;

/**
 * A document's text for a brain that cannot open files (a local model gets
 * only the words of its turn): the content when it is UTF-8 text, cut at
 * INLINE_MAX_BYTES; undefined when it is not text (a PDF, an archive, an
 * office file), which such a brain cannot read at all.
 */
export async function documentText(file: string): Promise<{ text: string; cut: boolean } | undefined> {
  const bytes = await readFile(file);
  const head = bytes.subarray(0, INLINE_MAX_BYTES);
  const cut = head.length < bytes.length;
  if (head.includes(0)) return undefined;
  try {
    // `stream` when cut: a character split at the cut is left out, not taken for bad UTF-8.
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: cut }), cut };
  } catch {
    return undefined;
  }
}
