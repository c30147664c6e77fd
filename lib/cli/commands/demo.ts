/** `vdcrypt demo`: the main job (`npm start`), see demo/run.ts. */
import type { Command } from 'commander';

import { action } from '../action.js';
import { runDemo } from '../demo/run.js';
import { useColour } from './status.js';

export function registerDemoCommand(program: Command): void {
  program.command('demo')
    .description('show SSE on a virtual disk end to end on a temporary home (well under a minute)')
    .option('--keep', 'keep the temporary home (its path is printed) instead of deleting it')
    .action(action(async (ctx, opts: { keep?: boolean }) => {
      await runDemo({ keep: opts.keep === true, colour: useColour(ctx), out: (line) => ctx.stdout.write(`${line}\n`) });
    }));
}
