// The page reader's worker as the sources run (tests, `tsx src/main.ts`): a worker thread does not
// inherit tsx's loader, so this registers it, then runs the TypeScript module. The bundle runs the built one.
import { register } from 'tsx/esm/api';

register();
await import('./page-worker.ts');
