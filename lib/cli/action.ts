/** Glue between commander and the command functions: a fresh {@link CliContext} per run, closed after it. */
import type { Command } from 'commander';

import { CliContext, type GlobalOptions } from './context.js';

/**
 * Wrap a command function as a commander action. Commander calls actions with the positional arguments, the
 * command's options and the command itself; `fn` receives the context first, then the arguments and options.
 */
export function action<A extends unknown[]>(fn: (ctx: CliContext, ...args: A) => Promise<void>): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    const ctx = new CliContext(command.optsWithGlobals<GlobalOptions>());
    try {
      await fn(ctx, ...(args.slice(0, -1) as A));
    } finally {
      await ctx.close();
    }
  };
}
