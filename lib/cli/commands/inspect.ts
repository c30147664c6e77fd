/** `vdcrypt inspect <image>`: the structure and validation report of a VHD or raw image (lib/vhd). */
import type { Command } from 'commander';

import { inspectImage, type ImageReport } from '../../vhd/index.js';
import { action } from '../action.js';
import { EXIT_FAILURE, requestExit } from '../errors.js';
import { formatBytes } from '../parse.js';

function describe(r: ImageReport): string[] {
  const lines = [
    `image          ${r.path}`,
    `format         ${r.format}`,
    `valid          ${r.valid ? 'yes' : 'NO'}`,
    `file size      ${formatBytes(r.fileSize)} (${r.fileSize} bytes)`,
  ];
  if (r.virtualSize !== undefined) lines.push(`virtual size   ${formatBytes(r.virtualSize)} (${r.virtualSize} bytes)`);
  if (r.allocatedSize !== undefined) lines.push(`allocated      ${formatBytes(r.allocatedSize)}`);
  if (r.footer !== undefined) {
    lines.push(`creator        ${r.footer.creatorApplication.trim()}`);
    lines.push(`unique id      ${r.footer.uniqueId}`);
  }
  if (r.header !== undefined) lines.push(`blocks         ${r.header.maxTableEntries} of ${formatBytes(r.header.blockSize)}`);
  if (r.chain !== undefined && r.chain.length > 1) r.chain.forEach((m, i) => lines.push(`chain[${i}]       ${m.format} ${m.path}`));
  if (r.error !== undefined) lines.push(`error          ${r.error.code} at ${r.error.field}: ${r.error.message}`);
  return lines;
}

export function registerInspectCommand(program: Command): void {
  program.command('inspect <image>')
    .description('VHD structure and validation report (footer, dynamic header, BAT, differencing chain); exit 1 when invalid')
    .action(action(async (ctx, image: string) => {
      const report = await inspectImage(image);
      ctx.emit(report, () => describe(report));
      if (!report.valid) requestExit(EXIT_FAILURE);
    }));
}
