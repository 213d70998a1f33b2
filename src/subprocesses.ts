import { onFirstUse } from './lazy.js';

/**
 * execa, brainstem's way to run a program (the Claude CLI and its readiness
 * check, /run's commands, /upgrade's steps, llama model swaps), loaded on the
 * first run: with its dependencies it is ~110 kB of source that evaluates on
 * load (~30 ms of a start on a 2-core machine), and serving the first request
 * runs no program.
 *
 *   const { execa } = await subprocesses();
 */
export const subprocesses = onFirstUse(() => import('execa'));

export type Execa = Awaited<ReturnType<typeof subprocesses>>['execa'];
