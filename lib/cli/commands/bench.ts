/**
 * `vdcrypt bench [--quick] [--svg FILE]`: runs the project benchmark (`node --expose-gc bench/run.js`, which
 * prints its Markdown table and rewrites bench/RESULTS.md) and can chart its ratios as SVG.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import type { Command } from 'commander';

import { parseBenchTable, renderBenchSvg } from '../bench-svg.js';
import { action } from '../action.js';
import type { CliContext } from '../context.js';
import { VdcryptError } from '../../errors.js';
import { EXIT_FAILURE, UsageError } from '../errors.js';

/** bench/run.js of the package: dist/lib/cli/commands → the package root. */
const BENCH_SCRIPT = fileURLToPath(new URL('../../../../bench/run.js', import.meta.url));

async function bench(ctx: CliContext, opts: { quick?: boolean; svg?: string; write: boolean }): Promise<void> {
  if (!existsSync(BENCH_SCRIPT)) throw new UsageError(`the benchmark is not installed here (no ${BENCH_SCRIPT}); run it from a clone of vdcrypt`);
  const args = ['--expose-gc', BENCH_SCRIPT, ...(opts.quick === true ? ['--quick'] : []), ...(opts.write ? [] : ['--no-write'])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', ctx.quiet ? 'ignore' : 'inherit'] });
  let markdown = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    markdown += chunk;
  });
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? EXIT_FAILURE));
  });
  if (code !== 0) throw new VdcryptError('BenchmarkFailed', `bench/run.js exited with code ${code}`, { status: 500 });
  const rows = parseBenchTable(markdown);
  if (opts.svg !== undefined) {
    await writeFile(opts.svg, renderBenchSvg(rows, `vdcrypt AES-256-XTS benchmark${opts.quick === true ? ' (quick)' : ''}`));
    ctx.note(`wrote the benchmark chart to ${opts.svg}`);
  }
  ctx.emit({ rows, markdown }, () => markdown.trimEnd());
}

export function registerBenchCommand(program: Command): void {
  program.command('bench')
    .description('run the benchmark (vs node:crypto and openssl speed); rewrites bench/RESULTS.md')
    .option('--quick', 'a short run')
    .option('--svg <file>', 'also write the ratios as an SVG bar chart')
    .option('--no-write', 'do not rewrite bench/RESULTS.md')
    .action(action(bench));
}
