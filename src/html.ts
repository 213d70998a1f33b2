/**
 * Telegram HTML that brainstem writes itself. An `Html` is made only by the
 * `html` template tag, which escapes every value put into it: a template's
 * own tags are formatting, anything from outside (an upstream's error, a mode
 * description, a file name, a user's name) can only ever be text. A value
 * that is itself `Html` goes in as it is, so templates compose.
 */

export class Html {
  private constructor(readonly text: string) {}

  /** The template tag's only way in; not for anything else. */
  static fromTemplate(strings: TemplateStringsArray, values: readonly HtmlValue[]): Html {
    let text = strings[0] ?? '';
    values.forEach((v, i) => {
      text += (v instanceof Html ? v.text : escapeHtml(String(v))) + (strings[i + 1] ?? '');
    });
    return new Html(text);
  }

  /**
   * Words written once for every face (src/chat/facts.ts), given Telegram's markup: as safe as a
   * template, since their own text is brainstem's and every value in them went through `plain`.
   */
  static marked(words: (m: typeof htmlMarkup) => string): Html {
    return new Html(words(htmlMarkup));
  }

  /** Pieces of HTML one after another, `separator` (text, escaped) between them. */
  static join(parts: readonly Html[], separator: string): Html {
    return new Html(parts.map((p) => p.text).join(escapeHtml(separator)));
  }

  toString(): string {
    return this.text;
  }
}

export type HtmlValue = string | number | Html;

/** `html\`Mode <b>${id}</b>: ${reason}\``: the template's tags kept, every value escaped. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  return Html.fromTemplate(strings, values);
}

/** Telegram's markup for the words brainstem says about itself (src/chat/facts.ts's Markup). */
export const htmlMarkup = { strong: (s: string) => `<b>${s}</b>`, plain: escapeHtml };

/** Text as Telegram HTML shows it: `&`, `<` and `>` escaped (enough outside attributes). */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
