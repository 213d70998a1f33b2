/**
 * Why `text` is not JSON, in V8's words but without the piece of the text V8
 * quotes (`Unexpected token 's', ..."b": sk-ant-oat"... is not valid JSON`):
 * the files read so (brainstem.json, openclaw.json) hold secrets, and this
 * line goes to stderr and pm2's log. Where it is instead, as line and column
 * (the same on every Node version: Node 24 adds its own, Node 20 does not).
 */
export function jsonProblem(text: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const quoted = /^(.*?), (\.\.\.)?"([\s\S]*)"(?:\.\.\.)? is not valid JSON$/.exec(message);
  if (quoted) {
    const [, what = 'not valid JSON', cut, extract = ''] = quoted;
    const start = text.indexOf(extract);
    // V8 quotes up to 10 characters before the one it stopped at: `...` says it cut there.
    return start < 0 ? what : `${what} at ${lineAndColumn(text, start + (cut ? 10 : 0))}`;
  }
  const at = / at position (\d+)(?: \(line \d+ column \d+\))?$/.exec(message);
  if (!at) return message;
  return `${message.slice(0, at.index)} at ${lineAndColumn(text, Number(at[1]))}`;
}

function lineAndColumn(text: string, position: number): string {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  return `line ${line} column ${position - before.lastIndexOf('\n')}`;
}
