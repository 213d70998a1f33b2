import { z } from 'zod';

/**
 * What a person needs to judge a tool request, as text (not escaped): the command, the file, the
 * URL… and, for a tool that changes a file, the change itself. A question that showed only the
 * path of a Write had the approver allow content they never saw. Whole, however long: the
 * approver must be able to see all of what they allow, so each face cuts it to its own room and
 * says so (ApprovalRequest.summary).
 *
 * A change reads like a diff: the file's path on the first line, then the lines taken out
 * prefixed `- ` and those put in `+ `. The tool's own words for its options (`replace_all`,
 * `edit_mode`), as the CLI sends them, are shown as they are: they read the same in any language.
 */

/** The inputs as the CLI sends them to the permission prompt (it makes the path absolute, adds `replace_all: false`). */
const writeInput = z.object({ file_path: z.string(), content: z.string() });
const oneEdit = z.object({
  old_string: z.string(),
  new_string: z.string(),
  replace_all: z.boolean().optional(),
});
const editInput = oneEdit.extend({ file_path: z.string() });
/** Gone from the current CLI (2.1.x has no such tool), shown all the same should one come. */
const multiEditInput = z.object({ file_path: z.string(), edits: z.array(oneEdit) });
const notebookEditInput = z.object({
  notebook_path: z.string(),
  new_source: z.string(),
  cell_id: z.string().optional(),
  cell_type: z.string().optional(),
  edit_mode: z.string().optional(),
});

/** The one thing a request is about (the command, the file, the URL…), else its input whole. */
export function subject(tool: string, input: Record<string, unknown>): string {
  const keys =
    tool === 'Bash' ? ['command'] : ['file_path', 'notebook_path', 'url', 'query', 'pattern', 'path'];
  const main = keys.map((k) => input[k]).find((v): v is string => typeof v === 'string' && v.length > 0);
  return main ?? JSON.stringify(input);
}

/**
 * The subject, and for a file change what it writes. An input not of the shape the tool takes
 * (another CLI's) is shown whole as JSON: nothing of it is left unseen.
 */
export function summarize(tool: string, input: Record<string, unknown>): string {
  const change = changeOf(tool, input);
  if (change === null) return subject(tool, input);
  return change ?? JSON.stringify(input);
}

/** null: not a file change; undefined: a file change whose input is not of its known shape. */
function changeOf(tool: string, input: Record<string, unknown>): string | null | undefined {
  switch (tool) {
    case 'Write': {
      const w = writeInput.safeParse(input);
      return w.success ? lines(w.data.file_path, marked('+ ', w.data.content)) : undefined;
    }
    case 'Edit': {
      const e = editInput.safeParse(input);
      return e.success ? lines(`${e.data.file_path}${all(e.data)}`, diff(e.data)) : undefined;
    }
    case 'MultiEdit': {
      const m = multiEditInput.safeParse(input);
      if (!m.success) return undefined;
      const n = m.data.edits.length;
      return lines(
        m.data.file_path,
        ...m.data.edits.map((e, i) => lines(`edit ${i + 1}/${n}${all(e)}:`, diff(e))),
      );
    }
    case 'NotebookEdit': {
      const nb = notebookEditInput.safeParse(input);
      if (!nb.success) return undefined;
      const { notebook_path, new_source, ...cell } = nb.data;
      const how = Object.entries(cell)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ');
      // A delete ignores the source (the CLI still wants one): what it takes out is the cell.
      return lines(notebook_path, how, cell.edit_mode === 'delete' ? '' : marked('+ ', new_source));
    }
    default:
      return null;
  }
}

const all = (e: { replace_all?: boolean | undefined }): string => (e.replace_all ? ' (replace_all)' : '');

const diff = (e: { old_string: string; new_string: string }): string =>
  lines(marked('- ', e.old_string), marked('+ ', e.new_string));

/** Each line of `text` after `mark`; nothing for an empty text, and no empty last line for its final line feed. */
function marked(mark: string, text: string): string {
  if (text === '') return '';
  return text
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => mark + l)
    .join('\n');
}

const lines = (...parts: string[]): string => parts.filter((p) => p !== '').join('\n');
