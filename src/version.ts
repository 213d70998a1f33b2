import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface PackageJson {
  name?: string;
  version?: string;
}

/** brainstem's own package.json and its folder, found once; works from the sources and from dist/. */
const found = ((): { dir: string; pkg: PackageJson } | undefined => {
  for (const rel of ['../', '../../']) {
    const dir = new URL(rel, import.meta.url);
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as PackageJson;
      if (pkg.name === 'brainstem') return { dir: fileURLToPath(dir), pkg };
    } catch {
      // try the next candidate
    }
  }
  return undefined;
})();

/** The package version. */
export function packageVersion(): string {
  return found?.pkg.version ?? '0.0.0';
}

/** The folder that holds brainstem's package.json (undefined if it was moved away from it). */
export function packageRoot(): string | undefined {
  return found?.dir;
}
