import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type BenchSetup, setupProblems } from '../bench/fixture.js';
import { FRONT_SETUP } from '../bench/front.js';
import { IMAGES_SETUP } from '../bench/images.js';
import { MAIN_SETUP } from '../bench/main-setup.js';
import { SPARE_SETUP } from '../bench/spare.js';
import { STARTUP_NO_SPARE_SETUP, STARTUP_SETUP } from '../bench/startup.js';

/** The problems of `setup`, its brainstem.json written as the bench writes it (less the CLI's part). */
function problems(setup: BenchSetup): string[] {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'bst-bench-setup-')), 'brainstem.json');
  writeFileSync(file, JSON.stringify(setup.config));
  return setupProblems(setup, file);
}

// `npm run bench` is not in CI: a setup it outgrew would show only when someone runs it.
describe('the bench setups', () => {
  it.each([
    ['main', MAIN_SETUP],
    ['spare', SPARE_SETUP],
    ['startup', STARTUP_SETUP],
    ['startup without a spare', STARTUP_NO_SPARE_SETUP],
    ['front', FRONT_SETUP],
    ['images', IMAGES_SETUP],
  ])('%s: brainstem takes its brainstem.json, and its caps carry its runs', (_name, setup) => {
    expect(problems(setup)).toEqual([]);
  });

  it('names a process cap under the Claude turns the bench runs at once', () => {
    const { claude: _claude, ...rest } = MAIN_SETUP.config;
    expect(problems({ ...MAIN_SETUP, config: rest })).toEqual([
      'claude.maxProcesses is 6, under the 8 Claude turns the bench runs at once (the rest would get a 429)',
    ]);
  });

  it('names warm processes too few for the conversations timed on them', () => {
    const config = { ...SPARE_SETUP.config, claude: { maxProcesses: 12, warm: { enabled: false } } };
    expect(problems({ ...SPARE_SETUP, config })).toEqual([
      'claude.warm keeps 0 processes, under the 9 conversations the bench times on their warm process (some would start a new one)',
    ]);
  });
});
