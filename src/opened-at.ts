import type { FileHandle } from 'node:fs/promises';
import { realpath, stat } from 'node:fs/promises';

/**
 * Whether an open handle is the file at `real` (a path with no link in it): by the handle's
 * /proc link on Linux, which names where the file was opened or created whatever links led
 * there; elsewhere by device and inode. A path is judged before it is opened, and a folder on
 * the way swapped for a link in between would lead somewhere else: what was opened must be it.
 */
export async function isOpenedAt(fh: FileHandle, real: string): Promise<boolean> {
  try {
    return (await realpath(`/proc/self/fd/${fh.fd}`)) === real;
  } catch {
    const [opened, now] = await Promise.all([fh.stat(), stat(real).catch(() => undefined)]);
    return now !== undefined && now.dev === opened.dev && now.ino === opened.ino;
  }
}
