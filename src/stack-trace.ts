import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Stack traces that name the TypeScript sources when brainstem runs from its
 * bundle (dist/, see scripts/build.ts). `node --enable-source-maps` would do it
 * too, but it parses every chunk's map as the chunk loads and keeps them: ~20 MB
 * of resident memory for traces that are rarely written. Here a map is read the
 * first time a trace goes through its chunk, when the trace is formatted (V8
 * formats `error.stack` on first read). From the sources (tsx) nothing changes.
 */
export function mapStackTracesToSources(): void {
  const here = fileURLToPath(import.meta.url);
  if (!existsSync(`${here}.map`)) return;
  const dist = path.dirname(path.dirname(here));
  Error.prepareStackTrace = (error, frames) => {
    const lines = frames.map((frame) => `    at ${mapFrame(frame, dist)}`);
    return [header(error), ...lines].join('\n');
  };
}

const maps = new Map<string, SourceMap | undefined>();

function mapFrame(frame: NodeJS.CallSite, dist: string): string {
  const text = frame.toString();
  const url = frame.getFileName();
  const line = frame.getLineNumber();
  const column = frame.getColumnNumber();
  if (!url || line === null || column === null) return text;
  const file = url.startsWith('file:') ? fileURLToPath(url) : url;
  if (!file.startsWith(dist)) return text;
  if (!maps.has(file)) {
    const mapFile = `${file}.map`;
    maps.set(
      file,
      existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))) : undefined,
    );
  }
  const entry = maps.get(file)?.findEntry(line - 1, column - 1);
  // Library code has no source in the maps (see scripts/build.ts): its frame keeps the bundle's position.
  if (!entry || !('originalSource' in entry) || !entry.originalSource || entry.generatedLine !== line - 1) {
    return text;
  }
  const source = path.resolve(path.dirname(file), entry.originalSource);
  return text.replace(
    `${url}:${line}:${column}`,
    `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`,
  );
}

/** The first line V8 writes: `Name: message`. */
function header(error: Error): string {
  try {
    return String(error);
  } catch {
    return '<error>';
  }
}
