import { isUtf8 } from 'node:buffer';

/**
 * Decodes output as UTF-8, with each byte that is not part of a valid sequence written as git
 * writes a byte in a quoted path (`\377`) rather than replaced by U+FFFD: git prints a file name
 * as it is (core.quotePath=false), and one that is not UTF-8 was shown as a different name, which
 * no command could use. Git quotes a name holding a backslash (`"a\\b"`), so an escape outside
 * quotes can only be such a byte. The bidirectional controls are written so too: shown, they
 * reorder the rest of the line (`evil<U+202E>txt.exe` reads `evilexe.txt`). Same interface as
 * TextDecoder's decode.
 */
export class EscapingDecoder {
  /** The start of a sequence cut by the chunk's end, kept for the next chunk. */
  private pending: Buffer = Buffer.alloc(0);

  decode(chunk?: Uint8Array, options?: { stream?: boolean }): string {
    const bytes = chunk ? Buffer.concat([this.pending, chunk]) : this.pending;
    this.pending = Buffer.alloc(0);
    let text = '';
    let valid = 0;
    let i = 0;
    while (i < bytes.length) {
      const length = sequenceLength(bytes[i] as number);
      if (length === 1) {
        i++;
        continue;
      }
      if (length > 0 && i + length > bytes.length && options?.stream && startsSequence(bytes.subarray(i))) {
        this.pending = Buffer.from(bytes.subarray(i));
        break;
      }
      if (length > 0 && isUtf8(bytes.subarray(i, i + length))) {
        i += length;
        continue;
      }
      text += `${shown(bytes.subarray(valid, i))}${octal(bytes.subarray(i, i + 1))}`;
      valid = ++i;
    }
    return text + shown(bytes.subarray(valid, i));
  }
}

/** The characters that change the order the text around them is shown in (Unicode's bidi controls). */
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Valid UTF-8 as text, its bidi controls escaped. */
const shown = (bytes: Buffer) =>
  bytes.toString('utf8').replace(BIDI_CONTROLS, (char) => octal(Buffer.from(char)));

const octal = (bytes: Buffer) => [...bytes].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');

/** The bytes of the UTF-8 sequence this byte starts (1 for ASCII), 0 if it starts none. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/** Whether these bytes (fewer than the sequence needs) could still become a valid sequence. */
function startsSequence(bytes: Buffer): boolean {
  // Completed with the smallest continuation bytes, or the largest: one of them is valid if any completion is.
  const length = sequenceLength(bytes[0] as number);
  const missing = length - bytes.length;
  return [0x80, 0xbf].some((fill) => isUtf8(Buffer.concat([bytes, Buffer.alloc(missing, fill)])));
}
