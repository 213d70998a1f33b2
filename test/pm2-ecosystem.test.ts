import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFlags } from './helpers/process.js';

/**
 * ecosystem.config.cjs as pm2 reads it (pm2 itself is not a dependency: what is checked here is
 * the file's fields against pm2's rules, seen with pm2 7.0.4 on Node 24).
 */
interface App {
  script: string;
  node_args: string[];
  instances?: number;
  merge_logs?: boolean;
  out_file: string;
  error_file: string;
}
const { apps } = createRequire(import.meta.url)('../ecosystem.config.cjs') as { apps: App[] };
const app = apps[0] as App;

describe('the pm2 process file', () => {
  it('runs the bundle with the flags of npm start', () => {
    expect(apps).toHaveLength(1);
    expect(app.script).toBe(path.resolve('dist/src/main.js'));
    expect(existsSync(app.script)).toBe(true);
    expect(app.node_args).toEqual(startFlags());
  });

  it('writes its logs to the files it names, not to copies suffixed with the pm2 id', () => {
    // pm2 adds `-<id>` to out_file and error_file (logs/brainstem.out-0.log) unless merge_logs is
    // set, or the app gives no `instances` (pm2's lib/Common.js): `instances: 1` alone made
    // `tail -f logs/brainstem.err.log` find no file.
    expect(app.merge_logs === true || app.instances === undefined).toBe(true);
    expect(app.out_file).toBe(path.resolve('logs/brainstem.out.log'));
    expect(app.error_file).toBe(path.resolve('logs/brainstem.err.log'));
  });
});
