import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Who imports whom among the project's own files, read from their source:
 * every relative import counts (`import type`, `export … from`, side-effect
 * imports and dynamic `import()` too), since a type-only cycle still ties
 * the files together for a reader. Paths are relative to the repo root,
 * with `/` separators.
 */
export type ImportGraph = Map<string, string[]>;

export function importGraph(root: string, dirs: readonly string[]): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of dirs.flatMap((d) => tsFiles(root, d))) {
    const source = readFileSync(path.join(root, file), 'utf8');
    const targets = ts
      .preProcessFile(source, true, true)
      .importedFiles.map((f) => f.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => toPosix(path.join(path.dirname(file), spec.replace(/\.js$/, '.ts'))));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/**
 * Every import cycle, one per group of files that reach each other (a
 * strongly connected component, Tarjan's algorithm), shown as a path that
 * closes: `a.ts → b.ts → a.ts`.
 */
export function importCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const groups: string[][] = [];
  let next = 0;
  const visit = (file: string): void => {
    index.set(file, next);
    low.set(file, next);
    next++;
    stack.push(file);
    onStack.add(file);
    for (const dep of graph.get(file) ?? []) {
      if (!graph.has(dep)) continue;
      if (!index.has(dep)) {
        visit(dep);
        low.set(file, Math.min(low.get(file) ?? 0, low.get(dep) ?? 0));
      } else if (onStack.has(dep)) {
        low.set(file, Math.min(low.get(file) ?? 0, index.get(dep) ?? 0));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const group: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop();
      if (member === undefined) break;
      onStack.delete(member);
      group.push(member);
    } while (member !== file);
    if (group.length > 1 || graph.get(file)?.includes(file)) groups.push(group);
  };
  for (const file of [...graph.keys()].sort()) if (!index.has(file)) visit(file);
  return groups.map((group) => cycleThrough(graph, new Set(group)));
}

/** A shortest closed path through the group's first file (sorted), staying inside the group. */
function cycleThrough(graph: ImportGraph, group: Set<string>): string[] {
  const [start] = [...group].sort();
  if (start === undefined) return [];
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift() as string;
    for (const dep of graph.get(file) ?? []) {
      if (!group.has(dep)) continue;
      if (dep === start) {
        const chain: string[] = [];
        for (let at: string | undefined = file; at !== undefined && at !== start; at = cameFrom.get(at)) {
          chain.unshift(at);
        }
        return [start, ...chain, start];
      }
      if (!cameFrom.has(dep)) {
        cameFrom.set(dep, file);
        queue.push(dep);
      }
    }
  }
  return [start, start];
}

function tsFiles(root: string, dir: string): string[] {
  if (!existsSync(path.join(root, dir))) return [];
  return readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => toPosix(path.join(dir, f)));
}

function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}
