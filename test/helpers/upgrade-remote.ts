import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

/**
 * A real bare remote under `base` with one commit, cloned twice: `work` is the
 * checkout brainstem upgrades, `other` is where a test pushes the new commit.
 */
export function createUpgradeRemote(base: string): { origin: string; work: string; other: string } {
  const origin = path.join(base, 'origin.git');
  const work = path.join(base, 'work');
  const other = path.join(base, 'other');
  const seed = path.join(base, 'seed');
  mkdirSync(seed);
  git(base, 'init', '-q', '--bare', '-b', 'main', origin);
  git(seed, 'init', '-q', '-b', 'main');
  writeFileSync(path.join(seed, 'README.md'), 'brainstem\n');
  git(seed, 'add', '.');
  git(seed, '-c', 'user.email=dev@example.com', '-c', 'user.name=Dev', 'commit', '-q', '-m', 'initial');
  git(seed, 'remote', 'add', 'origin', origin);
  git(seed, 'push', '-q', '-u', 'origin', 'main');
  git(base, 'clone', '-q', origin, work);
  git(base, 'clone', '-q', origin, other);
  git(other, 'config', 'user.email', 'dev@example.com');
  git(other, 'config', 'user.name', 'Dev');
  return { origin, work, other };
}

/** Another developer pushes a commit from `other` (files: name → content; a content of null deletes it); returns its short hash. */
export function pushUpstream(
  other: string,
  subject: string,
  files: Record<string, string | null> = { [`${subject.replace(/\W+/g, '-')}.txt`]: `${subject}\n` },
): string {
  const removed = Object.keys(files).filter((name) => files[name] === null);
  const written = Object.keys(files).filter((name) => files[name] !== null);
  for (const name of written) {
    mkdirSync(path.dirname(path.join(other, name)), { recursive: true });
    writeFileSync(path.join(other, name), files[name] as string);
  }
  // One git for all the files: one per file made a commit of hundreds of files take seconds.
  if (removed.length > 0) git(other, 'rm', '-q', '--', ...removed);
  if (written.length > 0) git(other, 'add', '--', ...written);
  git(other, 'commit', '-q', '-m', subject);
  git(other, 'push', '-q', 'origin', 'main');
  return git(other, 'rev-parse', '--short', 'HEAD');
}

/** Someone commits on the checkout itself, a commit the upstream lacks (a diverged branch); returns its short hash. */
export function commitLocally(work: string, subject: string): string {
  writeFileSync(path.join(work, 'local.txt'), `${subject}\n`);
  git(work, 'add', 'local.txt');
  git(work, '-c', 'user.email=a@example.com', '-c', 'user.name=A', 'commit', '-q', '-m', subject);
  return git(work, 'rev-parse', '--short', 'HEAD');
}
