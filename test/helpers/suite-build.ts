import type { TestProject } from 'vitest/node';
import { holdForRun, releaseBuild } from './build.js';

/**
 * vitest's globalSetup: dist/ built if need be, once, in vitest's own process before any test
 * file starts, and held until the run ends (test/helpers/build.ts), so that no build empties it
 * under the brainstem processes the test files start from it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await holdForRun();
  // vitest --watch: a rerun starts once the run before it has ended, and is built for.
  project.onTestsRerun(holdForRun);
  return releaseBuild;
}
