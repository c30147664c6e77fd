/**
 * `vdcrypt status`: a blob's encryption state per range (`--json`: the EncryptionStatus shape), as a map in the
 * terminal (`--map`) or as an SVG file (`--svg FILE`).
 */
import { writeFile } from 'node:fs/promises';

import type { Command } from 'commander';

import type { EncryptionStatus } from '../../blob/index.js';
import { action } from '../action.js';
import type { CliContext } from '../context.js';
import { buildMap } from '../map/cells.js';
import { renderSvgMap } from '../map/svg.js';
import { renderTerminalMap } from '../map/terminal.js';
import { formatBytes, parseBlobAddress } from '../parse.js';

export function useColour(ctx: CliContext): boolean {
  if (ctx.env['NO_COLOR'] !== undefined && ctx.env['NO_COLOR'] !== '') return false;
  if (ctx.env['FORCE_COLOR'] !== undefined && ctx.env['FORCE_COLOR'] !== '0') return true;
  return ctx.stdout.isTTY;
}

export function describeStatus(s: EncryptionStatus): string[] {
  return [
    `blob             ${s.blob}`,
    `size             ${formatBytes(s.size)} (${s.size} bytes)`,
    `serverEncrypted  ${s.serverEncrypted}`,
    `allocated        ${formatBytes(s.allocatedBytes)}: ${formatBytes(s.encryptedBytes)} encrypted, ${formatBytes(s.plaintextBytes)} plaintext`,
    `unallocated      ${formatBytes(s.unallocatedBytes)}`,
    ...s.ranges.map((r) => `  ${String(r.start).padStart(12)}-${String(r.end).padEnd(12)} ${r.state}${r.generation === null ? '' : ` (data key ${r.generation})`}`),
  ];
}

async function status(ctx: CliContext, address: string, opts: { map?: boolean; svg?: string }): Promise<void> {
  const ref = parseBlobAddress(address);
  const s = await (await ctx.blobs(ref.account)).getEncryptionStatus(ref);
  if (opts.svg !== undefined) {
    await writeFile(opts.svg, renderSvgMap(buildMap(s)));
    ctx.note(`wrote the encryption map of ${s.blob} to ${opts.svg}`);
  }
  ctx.emit(s, () => (opts.map === true ? renderTerminalMap(buildMap(s), { colour: useColour(ctx) }) : describeStatus(s)));
}

export function registerStatusCommand(program: Command): void {
  program.command('status <account/container/blob[@snapshot]>')
    .description('encryption state per range, byte counts and serverEncrypted; --map draws it, --svg writes it as SVG')
    .option('--map', 'draw the blob as a strip of cells: unallocated, plaintext, encrypted by data key generation')
    .option('--svg <file>', 'write the same map as an SVG file')
    .action(action(status));
}
