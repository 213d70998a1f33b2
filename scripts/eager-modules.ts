/**
 * V8 compiles a function the first time it is called, unless it looks called
 * at once: a function expression in parentheses, `(function () {…})`, is
 * compiled with the file around it. esbuild hands each bundled CommonJS module
 * (fastify, pino, grammY, …) to its `__commonJS` helper as an arrow function,
 * run when the module is first required, so V8 compiled each of those bodies
 * during every start: Node's compile cache keeps what was compiled when it
 * compiled the file, never what is compiled later. Here each body becomes a
 * parenthesized function expression: compiled with its chunk, it comes from
 * the cache at the next start. Most of those bodies run at start anyway: idle
 * memory moved by half a megabyte at most; what it saves is in the README
 * ("Module bodies in the cache").
 *
 * The chunks are minified onto a few long lines: a column shifts for every
 * edit before it on its line, and the source maps are shifted to match
 * (scripts/build.ts, ownCodeOnly).
 */
import path from 'node:path';
import ts from 'typescript';

/** How far the text from `column` on (before the edits) moved on its line; in column order. */
export interface Shift {
  line: number;
  column: number;
  delta: number;
}

export interface EagerResult {
  text: string;
  shifts: Shift[];
  wrapped: number;
}

/** The `__commonJS` helper of a chunk set: the file that defines it, and the name it exports it as. */
export interface Helper {
  file: string;
  exported: string;
}

// Without parent links, which cost the parse time: nothing here walks up the tree.
const parse = (file: string, text: string) =>
  ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);

/**
 * Finds esbuild's `__commonJS` helper among the built files: the arrow that
 * creates `{ exports: {} }` for a module and calls the module's body with it.
 * Undefined when none is there (an esbuild that writes it otherwise).
 */
export function findHelper(files: { file: string; text: string }[]): Helper | undefined {
  for (const { file, text } of files) {
    if (!text.includes('exports:{}}).exports')) continue;
    const sf = parse(file, text);
    let local: string | undefined;
    const visit = (node: ts.Node): void => {
      if (
        ts.isVariableDeclaration(node) &&
        ts.isIdentifier(node.name) &&
        node.initializer &&
        ts.isArrowFunction(node.initializer) &&
        node.initializer.getText(sf).includes('exports:{}}).exports')
      )
        local = node.name.text;
      else ts.forEachChild(node, visit);
    };
    visit(sf);
    if (local === undefined) continue;
    for (const st of sf.statements) {
      if (!ts.isExportDeclaration(st) || !st.exportClause || !ts.isNamedExports(st.exportClause)) continue;
      for (const el of st.exportClause.elements)
        if ((el.propertyName ?? el.name).getText(sf) === local)
          return { file, exported: el.name.getText(sf) };
    }
  }
  return undefined;
}

/** The name `file` calls the helper by: its own, or the one it imports it as. */
function helperName(sf: ts.SourceFile, file: string, helper: Helper): string | undefined {
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier)) continue;
    const from = path.resolve(path.dirname(file), st.moduleSpecifier.text);
    const bindings = st.importClause?.namedBindings;
    if (from !== path.resolve(helper.file) || !bindings || !ts.isNamedImports(bindings)) continue;
    for (const el of bindings.elements)
      if ((el.propertyName ?? el.name).getText(sf) === helper.exported) return el.name.text;
  }
  if (path.resolve(file) !== path.resolve(helper.file)) return undefined;
  // The defining file calls it by its own name: the one its export clause gives as `exported`.
  for (const st of sf.statements) {
    if (!ts.isExportDeclaration(st) || !st.exportClause || !ts.isNamedExports(st.exportClause)) continue;
    for (const el of st.exportClause.elements)
      if (el.name.getText(sf) === helper.exported) return (el.propertyName ?? el.name).getText(sf);
  }
  return undefined;
}

/** Whether esbuild's import line from the helper's file (`import{c as p,…}from"./chunk-….js"`) names it. */
function importsHelper(text: string, helper: Helper): boolean {
  const from = `/${path.basename(helper.file)}"`;
  for (const m of text.matchAll(/import\{([^}]*)\}from("[^"]*")/g))
    if (m[2]?.endsWith(from) && m[1]?.split(',').some((n) => n.split(' as ')[0] === helper.exported))
      return true;
  return false;
}

/** `file`'s text with every module body it gives the helper made a parenthesized function expression. */
export function eagerModuleBodies(file: string, text: string, helper: Helper): EagerResult {
  // Only the helper's file, and those importing the helper by name, call it: the others (half the
  // text) are not parsed. helperName decides on the parsed imports.
  if (path.resolve(file) !== path.resolve(helper.file) && !importsHelper(text, helper))
    return { text, shifts: [], wrapped: 0 };
  const sf = parse(file, text);
  const name = helperName(sf, file, helper);
  const edits: { start: number; end: number; text: string }[] = [];
  const visit = (node: ts.Node): void => {
    const body = ts.isCallExpression(node) && node.arguments.length === 1 ? node.arguments[0] : undefined;
    if (
      body &&
      ts.isIdentifier((node as ts.CallExpression).expression) &&
      ((node as ts.CallExpression).expression as ts.Identifier).text === name
    ) {
      if (ts.isArrowFunction(body) && ts.isBlock(body.body)) {
        // `(a,b)=>{…}` → `(function(a,b){…})`: the module's `this` is esbuild's `exports` either way.
        const head = text.slice(body.getStart(sf), body.equalsGreaterThanToken.getStart(sf));
        const params = head.startsWith('(') ? head : `(${head})`;
        edits.push({ start: body.getStart(sf), end: body.body.getStart(sf), text: `(function${params}` });
        edits.push({ start: body.end, end: body.end, text: ')' });
      } else if (ts.isFunctionExpression(body)) {
        edits.push({ start: body.getStart(sf), end: body.getStart(sf), text: '(' });
        edits.push({ start: body.end, end: body.end, text: ')' });
      }
    }
    ts.forEachChild(node, visit);
  };
  if (name !== undefined) visit(sf);
  let out = '';
  let at = 0;
  const shifts: Shift[] = [];
  for (const edit of edits.sort((a, b) => a.start - b.start)) {
    out += text.slice(at, edit.start) + edit.text;
    at = edit.end;
    const { line, character } = sf.getLineAndCharacterOfPosition(edit.end);
    shifts.push({ line, column: character, delta: edit.text.length - (edit.end - edit.start) });
  }
  return { text: out + text.slice(at), shifts, wrapped: edits.length / 2 };
}
