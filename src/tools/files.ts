import { constants } from 'node:fs';
import { type FileHandle, lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { BrainstemError } from '../errors.js';
import { type Lang, t } from '../i18n.js';
import { isOpenedAt } from '../opened-at.js';
import type { OwnFiles } from '../own-files.js';
import type { ToolsConfig } from './config.js';
import { type AnyTool, defineTool } from './registry.js';

/**
 * read_file, confined to configured roots. The check is made on the real path
 * (every symlink resolved), so neither `..` nor a link can lead outside.
 * brainstem's own files (src/own-files.ts) are never read, even under a root
 * (a root that holds brainstem's checkout or the owner's home).
 */

const SNIFF_BYTES = 8_192;
/**
 * Above this share of control characters (other than tabs, line ends, form
 * feeds and the escapes of coloured logs) in the first bytes, what is not
 * UTF-8 is data, not text: random bytes have about 11 %, text in any
 * single-byte encoding next to none.
 */
const MAX_CONTROL_SHARE = 0.02;

export function fileTools(tools: ToolsConfig, own: OwnFiles): AnyTool[] {
  const cfg = tools.files;
  const noRoots = () =>
    new BrainstemError(
      'TOOL_NOT_CONFIGURED',
      'read_file has no roots: list the directories it may read in tools.files.roots in brainstem.json.',
      undefined,
      'read_file n’a pas de racines : listez les dossiers qu’il peut lire dans tools.files.roots dans brainstem.json.',
    );
  return [
    defineTool(
      {
        name: 'read_file',
        description: `Reads a text file under the configured roots (${cfg.roots.join(', ') || 'none configured'}). Relative paths are taken from the first root that has them.`,
        authorize: () => {
          if (cfg.roots.length === 0) throw noRoots();
        },
        run: async (input, ctx) => {
          if (cfg.roots.length === 0) throw noRoots();
          const file = await confine(input.path, cfg.roots);
          await refuseOwn(input.path, file, own);
          return readText(file, input.maxBytes ?? cfg.maxBytes, cfg.maxBytes, ctx.lang, (st) =>
            refuseOwnLink(input.path, st, own),
          );
        },
      },
      tools,
    ),
  ];
}

const noFile = (file: string) =>
  new BrainstemError('NOT_FOUND', `No file at ${file}.`, 'path', `Pas de fichier à ${file}.`);

const changedWhileOpened = (file: string) =>
  new BrainstemError(
    'TOOL_REFUSED',
    `${file} changed while it was being opened; try again.`,
    'path',
    `${file} a changé pendant son ouverture ; réessayez.`,
  );

const notRegular = (file: string) =>
  new BrainstemError(
    'TOOL_REFUSED',
    `${file} is not a regular file (a directory, FIFO, socket or device); read_file reads regular files only.`,
    'path',
    `${file} n’est pas un fichier ordinaire (un dossier, une FIFO, une socket ou un périphérique) ; read_file ne lit que des fichiers ordinaires.`,
  );

/** The real path of `requested` if it lies under a real root; otherwise a refusal naming the roots. */
async function confine(requested: string, roots: string[]): Promise<string> {
  const realRoots = (await Promise.all(roots.map((r) => realpath(r).catch(() => undefined)))).filter(
    (r): r is string => r !== undefined,
  );
  const candidates = path.isAbsolute(requested) ? [requested] : roots.map((r) => path.resolve(r, requested));
  let missing = false;
  for (const candidate of candidates) {
    let real: string;
    try {
      real = await realpath(candidate);
    } catch {
      // "No file" only where the file would be readable: beyond a link out of the roots it would
      // tell which files exist there.
      if (await wouldBeUnder(candidate, realRoots)) missing = true;
      continue;
    }
    if (isUnder(real, realRoots)) return real;
  }
  if (missing) throw noFile(requested);
  throw new BrainstemError(
    'TOOL_FORBIDDEN',
    `${requested} is outside the readable roots (${roots.join(', ')}); links and .. are followed before this check.`,
    'path',
    `${requested} est hors des racines lisibles (${roots.join(', ')}) ; les liens et .. sont suivis avant ce contrôle.`,
  );
}

/** Refuses `real` (the real path of `requested`) when it is one of brainstem's own files. */
async function refuseOwn(requested: string, real: string, own: OwnFiles): Promise<void> {
  const resolved = (p: string) => realpath(p).catch(() => undefined);
  const [dataDir, workspaces, ...files] = await Promise.all(
    [own.dataDir, own.workspaces, ...own.files].map(resolved),
  );
  const inData = dataDir !== undefined && isUnder(real, [dataDir]);
  const inWorkspaces = workspaces !== undefined && isUnder(real, [workspaces]);
  if ((inData && !inWorkspaces) || files.includes(real)) throw ownFile(requested);
}

/**
 * A hard link to one of brainstem's secrets has a path of its own, anywhere on the same disk
 * (a backup made with `cp -al`, a link made by hand): the opened file is refused when it is the
 * same inode as a credential file or a file of the data dir but workspaces/ (the API token, the
 * database, and in its folders every chat's uploads, which such a backup links too).
 */
async function refuseOwnLink(
  requested: string,
  st: { dev: number; ino: number; nlink: number },
  own: OwnFiles,
) {
  if (st.nlink < 2) return;
  const secrets = [...own.files, ...(await filesUnder(own.dataDir, own.workspaces))];
  const stats = await Promise.all(secrets.map((f) => stat(f).catch(() => undefined)));
  if (stats.some((s) => s?.dev === st.dev && s.ino === st.ino)) throw ownFile(requested);
}

/** The files under `dir`, at any depth, but those under `skip`; a link to a folder is not followed. */
async function filesUnder(dir: string, skip: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const found = await Promise.all(
    entries.map((e) => {
      const file = path.join(dir, e.name);
      if (!e.isDirectory()) return [file];
      return file === skip ? [] : filesUnder(file, skip);
    }),
  );
  return found.flat();
}

const ownFile = (requested: string) =>
  new BrainstemError(
    'TOOL_FORBIDDEN',
    `${requested} is one of brainstem's own files (its data dir, its config, a credential); read_file never reads them.`,
    'path',
    `${requested} est un des fichiers de brainstem (son dossier de données, sa configuration, un secret) ; read_file ne les lit jamais.`,
  );

function isUnder(real: string, realRoots: string[]): boolean {
  return realRoots.some(
    (root) => real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep),
  );
}

/** Whether a path that does not exist would lie under a root, judged on its nearest existing folder's real path. */
async function wouldBeUnder(missing: string, realRoots: string[]): Promise<boolean> {
  for (let dir = path.dirname(missing); ; dir = path.dirname(dir)) {
    const real = await realpath(dir).catch(() => undefined);
    if (real !== undefined) return isUnder(real, realRoots);
    if (path.dirname(dir) === dir) return false;
  }
}

/** Opens a regular file for reading; what cannot be opened is a refusal a caller can act on. */
async function openChecked(file: string): Promise<FileHandle> {
  try {
    if (!(await lstat(file)).isFile()) throw notRegular(file);
    return await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw noFile(file);
    if (code === 'EACCES' || code === 'EPERM')
      throw new BrainstemError(
        'TOOL_REFUSED',
        `${file} is not readable by brainstem's user.`,
        'path',
        `${file} n’est pas lisible par l’utilisateur de brainstem.`,
      );
    if (code === 'ELOOP') throw changedWhileOpened(file);
    throw err;
  }
}

/**
 * `maxBytes`: this call's limit; `cap`: tools.files.maxBytes, the most any call may read.
 * `lang`: the reader's, for the notes in the output (absent, English, for a program or a model).
 * `judge`: refuses what was opened, from its stat, before a byte is read.
 */
async function readText(
  file: string,
  maxBytes: number,
  cap: number,
  lang: Lang | undefined,
  judge: (st: { dev: number; ino: number; nlink: number }) => Promise<void>,
) {
  // Opening a FIFO for reading blocks until a writer comes, and each blocked open holds one of
  // libuv's four pool threads (file reads and DNS lookups wait behind them): the type is judged on
  // the path before any open. O_NONBLOCK covers a FIFO swapped in since (its open returns at once)
  // and the fstat below refuses it; O_NOFOLLOW stops a link swapped in from being followed.
  const fh = await openChecked(file);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(file);
    // The path was judged before the open, and O_NOFOLLOW covers its last part only: a folder
    // on the way swapped for a link since then would lead outside. What was opened must be it.
    if (!(await isOpenedAt(fh, file))) throw changedWhileOpened(file);
    await judge(st);
    const size = Math.min(st.size, maxBytes);
    const buf = Buffer.alloc(size);
    const { bytesRead } = await fh.read(buf, 0, size, 0);
    const bytes = buf.subarray(0, bytesRead);
    const truncated = st.size > bytesRead;
    const decoded = decodeText(bytes, truncated);
    if (!decoded) {
      throw new BrainstemError(
        'TOOL_REFUSED',
        `${file} is binary; read_file returns text only.`,
        'path',
        `${file} est binaire ; read_file ne rend que du texte.`,
      );
    }
    const { text, encoding } = decoded;
    // A limit inside a character leaves its first bytes out of the text: they are not counted as shown.
    const shown = encoding === 'utf-8' && truncated ? bytesRead - cutCharacterBytes(bytes) : bytesRead;
    const note =
      encoding === 'utf-8'
        ? ''
        : `${t(lang, '[not UTF-8: read as Windows-1252, a superset of Latin-1]', '[pas en UTF-8 : lu en Windows-1252, un sur-ensemble de Latin-1]')}\n`;
    const more = st.size - shown;
    return {
      output:
        note +
        (truncated
          ? `${text}\n${t(lang, `[… truncated: ${more} more bytes …]`, `[… coupé : ${more} octets de plus …]`)}`
          : text),
      data: { path: file, size: st.size, encoding },
      truncated,
      // The file's limit cut it, not tools.maxOutputChars (which a face would otherwise name): said
      // with the limit that did, so the reader knows what reads more.
      ...(truncated ? { note: cutNote(shown, st.size, maxBytes, cap, lang) } : {}),
    };
  } finally {
    await fh.close();
  }
}

function cutNote(read: number, size: number, maxBytes: number, cap: number, lang: Lang | undefined): string {
  return t(
    lang,
    `Only the first ${read} of the file's ${size} bytes are shown: read_file stops at maxBytes (${maxBytes}), which tools.files.maxBytes (${cap}) caps.`,
    `Seuls les ${read} premiers octets du fichier sur ${size} sont affichés : read_file s’arrête à maxBytes (${maxBytes}), que tools.files.maxBytes (${cap}) plafonne.`,
  );
}

/**
 * How many bytes at the end of valid UTF-8 cut short are the start of a character the cut split
 * (0 to 3): the bytes after the last lead byte, when that lead byte announces more.
 */
function cutCharacterBytes(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back] as number;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: its lead is further back
    const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return length > back ? back : 0;
  }
  return 0;
}

/**
 * The file's text, or undefined when it is binary: a NUL byte, or too many
 * control characters once it is not UTF-8. A text in another encoding is
 * read as Windows-1252 (what WHATWG decoders make of Latin-1 too): the
 * encoding of most non-UTF-8 text found on a server, and every byte maps to
 * a character, so nothing is lost from a Latin-1 file.
 */
function decodeText(
  bytes: Buffer,
  truncated: boolean,
): { text: string; encoding: 'utf-8' | 'windows-1252' } | undefined {
  const head = bytes.subarray(0, SNIFF_BYTES);
  if (head.includes(0)) return undefined;
  try {
    // `stream` tolerates a character cut in half by the size cap, and only then: a whole file
    // ending in half a character is not UTF-8 (a Latin-1 "café" would lose its "é").
    return {
      text: new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: truncated }),
      encoding: 'utf-8',
    };
  } catch {
    // Not UTF-8: text in another encoding, or data.
  }
  let controls = 0;
  for (const b of head) if ((b < 0x20 && !TEXT_CONTROLS.has(b)) || b === 0x7f) controls++;
  if (controls > head.length * MAX_CONTROL_SHARE) return undefined;
  return { text: new TextDecoder('windows-1252').decode(bytes), encoding: 'windows-1252' };
}

/** Tab, line feed, vertical tab, form feed, carriage return, escape. */
const TEXT_CONTROLS = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1b]);
