/**
 * The `vdcrypt` command line (bin/vdcrypt.js calls {@link main}). One command group per module under
 * commands/; this file builds the program and turns every failure into one line and an exit code
 * (errors.ts).
 */
import { Command, CommanderError } from 'commander';

import { describeError, EXIT_OK, EXIT_USAGE, exitCodeFor, takeRequestedExit } from './errors.js';
import { registerAccountCommands } from './commands/account.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerBlobCommands } from './commands/blob.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerInspectCommand } from './commands/inspect.js';
import { registerKeyCommands } from './commands/key.js';
import { registerPageCommands } from './commands/pages.js';
import { registerStatusCommand } from './commands/status.js';
import { registerTransferCommands } from './commands/transfer.js';
import { registerVaultCommands } from './commands/vault.js';

const COMMANDER_OK = new Set(['commander.helpDisplayed', 'commander.version']);

export function buildProgram(): Command {
  const program = new Command('vdcrypt')
    .description('Storage-service encryption for virtual disks: AES-256-XTS page blobs and VHD images with Azure SSE semantics')
    .option('--home <dir>', 'vdcrypt home (default: $VDCRYPT_HOME, else $XDG_DATA_HOME/vdcrypt or ~/.local/share/vdcrypt)')
    .option('--json', 'print results as JSON (errors as {"error": {code, status, message}} on stderr)')
    .option('-q, --quiet', 'print nothing but errors (and JSON results)')
    .option('--progress', 'show progress on long operations even when stderr is not a terminal')
    .version('0.1.0', '-V, --version')
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  registerAccountCommands(program);
  registerVaultCommands(program);
  registerKeyCommands(program);
  registerBlobCommands(program);
  registerTransferCommands(program);
  registerPageCommands(program);
  registerStatusCommand(program);
  registerInspectCommand(program);
  registerBenchCommand(program);
  registerDemoCommand(program);
  return program;
}

function reportError(error: unknown, json: boolean): number {
  if (error instanceof CommanderError) {
    if (COMMANDER_OK.has(error.code)) return EXIT_OK;
    const message = error.message.replace(/^error: /, '');
    if (error.code === 'commander.help' || error.code === 'commander.executeSubCommandAsync') return EXIT_USAGE;
    writeError({ code: 'UsageError', status: 400, message }, json);
    return EXIT_USAGE;
  }
  const report = describeError(error);
  writeError(report, json);
  if (!report.expected && process.env['VDCRYPT_DEBUG'] === '1' && error instanceof Error && error.stack !== undefined) {
    process.stderr.write(`${error.stack}\n`);
  } else if (!report.expected) {
    process.stderr.write('vdcrypt: this is unexpected; run again with VDCRYPT_DEBUG=1 for the stack trace\n');
  }
  return exitCodeFor(report);
}

function writeError(report: { code: string; status: number; message: string }, json: boolean): void {
  const line = report.message.split('\n')[0] ?? '';
  if (json) process.stderr.write(`${JSON.stringify({ error: { code: report.code, status: report.status, message: line } })}\n`);
  else process.stderr.write(`vdcrypt: ${report.code}: ${line}\n`);
}

/** Run the command line; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  try {
    takeRequestedExit();
    await buildProgram().parseAsync(argv, { from: 'user' });
    return takeRequestedExit();
  } catch (error) {
    return reportError(error, json);
  }
}
