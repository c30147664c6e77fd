/**
 * The long operations: `import`, `export` (lib/pipeline), `copy` and `encrypt` (lib/blob/rewrite.ts). Each
 * shows progress on a terminal and stops cleanly on Ctrl-C, printing the command that resumes it.
 */
import type { Command } from 'commander';

import { copyBlob, encryptBlob, type Progress } from '../../blob/index.js';
import { EXPORT_FORMATS, exportBlob, type ExportFormat, importImage, type PipelineProgress } from '../../pipeline/index.js';
import type { AzureSizeMode } from '../../vhd/index.js';
import { action } from '../action.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { formatBytes, parseBlobAddress, parseWritableBlob } from '../parse.js';
import { type ProgressView, runLong } from '../progress.js';

/** Pipeline progress: done + skipped reaches the virtual size. */
function pipelineView(p: Pick<PipelineProgress, 'bytesDone' | 'bytesSkipped' | 'bytesTotal'>): ProgressView {
  return { moved: p.bytesDone, skipped: p.bytesSkipped, processed: p.bytesDone + p.bytesSkipped, total: p.bytesTotal };
}

/** Rewrite progress: the skipped bytes are known up front; the work is the allocated candidates. */
function rewriteView(p: Progress): ProgressView {
  return { moved: p.bytesDone, skipped: p.bytesSkipped, processed: p.bytesDone, total: p.bytesTotal };
}

function azureMode(value: string | boolean | undefined): AzureSizeMode | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true || value === 'round-up') return 'round-up';
  if (value === 'refuse') return 'refuse';
  throw new UsageError(`--azure takes round-up (the default) or refuse, got '${value}'`);
}

interface ImportFlags { baseImage?: boolean; azure?: string | boolean; resume?: boolean; overwrite?: boolean }

async function importCommand(ctx: CliContext, image: string, address: string, opts: ImportFlags): Promise<void> {
  const ref = parseWritableBlob(address);
  const azure = azureMode(opts.azure);
  const blobs = await ctx.blobs(ref.account);
  const again = ['vdcrypt import', image, address, opts.baseImage === true ? '--base-image' : '', azure === undefined ? '' : `--azure ${azure}`, '--resume']
    .filter((s) => s !== '').join(' ');
  // An account on the azure backend takes the bulk upload path (azure-import.ts), others the generic pipeline.
  const remote = await ctx.azureStore(ref.account);
  const result = await runLong(ctx, 'import', again, async (run) => {
    const flags = {
      baseImage: opts.baseImage === true, azure, resume: opts.resume === true, overwrite: opts.overwrite === true,
      signal: run.signal, onProgress: (p: Pick<PipelineProgress, 'bytesDone' | 'bytesSkipped' | 'bytesTotal'>) => run.update(pipelineView(p)),
    };
    if (remote === undefined) return importImage(blobs, image, ref, flags);
    const { importToAzure } = await import('../azure-import.js');
    return importToAzure(blobs, remote, image, ref, flags);
  });
  ctx.emit(result, () => `imported ${image} (${result.imageFormat}, ${formatBytes(result.virtualSize)}) into ${result.blob} as ` +
    `${result.mode === 'base-image' ? 'a plaintext base image' : 'an archive (follows the account\'s encryption)'}: ` +
    `${formatBytes(result.bytesWritten)} written, ${formatBytes(result.bytesSkipped)} skipped` +
    `${result.bytesResumed > 0 ? ` (${formatBytes(result.bytesResumed)} already imported)` : ''}`);
}

async function exportCommand(ctx: CliContext, address: string, out: string, opts: { format: string }): Promise<void> {
  const ref = parseBlobAddress(address);
  if (!EXPORT_FORMATS.includes(opts.format as ExportFormat)) {
    throw new UsageError(`--format must be ${EXPORT_FORMATS.join(', ')}, got '${opts.format}'`);
  }
  const format = opts.format as ExportFormat;
  const blobs = await ctx.blobs(ref.account);
  const result = await runLong(ctx, 'export', `vdcrypt export ${address} ${out} --format ${format}`,
    (run) => exportBlob(blobs, ref, out, { format, signal: run.signal, onProgress: (p) => run.update(pipelineView(p)) }));
  ctx.emit(result, () => `exported ${result.blob} to ${result.path} (${result.format}, ${formatBytes(result.fileSize)}): ` +
    `${formatBytes(result.bytesWritten)} written, ${formatBytes(result.bytesSkipped)} unallocated skipped`);
}

async function copyCommand(ctx: CliContext, src: string, dst: string): Promise<void> {
  const from = parseBlobAddress(src);
  const to = parseWritableBlob(dst);
  const blobs = await ctx.blobs(from.account, to.account);
  const result = await runLong(ctx, 'copy', `vdcrypt copy ${src} ${dst}`,
    (run) => copyBlob(blobs, from, to, { signal: run.signal, onProgress: (p) => run.update(rewriteView(p)) }));
  const status = await blobs.getEncryptionStatus(to);
  ctx.emit({ source: src, destination: dst, ...result, serverEncrypted: status.serverEncrypted },
    () => `copied ${src} to ${dst}: ${formatBytes(result.bytesDone)} copied, ${formatBytes(result.bytesSkipped)} unallocated skipped; ` +
      `destination ${status.serverEncrypted ? 'fully encrypted' : `${formatBytes(status.plaintextBytes)} plaintext`}`);
}

async function encryptCommand(ctx: CliContext, address: string, opts: { allGenerations?: boolean }): Promise<void> {
  const ref = parseWritableBlob(address);
  const blobs = await ctx.blobs(ref.account);
  const all = opts.allGenerations === true;
  const result = await runLong(ctx, 'encrypt', `vdcrypt encrypt ${address}${all ? ' --all-generations' : ''}`,
    (run) => encryptBlob(blobs, ref, { allGenerations: all, signal: run.signal, onProgress: (p) => run.update(rewriteView(p)) }));
  const status = await blobs.getEncryptionStatus(ref);
  ctx.emit({ blob: address, ...result, serverEncrypted: status.serverEncrypted },
    () => `encrypted ${formatBytes(result.bytesDone)} of ${address} under data key generation ${result.generation} ` +
      `(${formatBytes(result.bytesSkipped)} skipped: unallocated or already current); serverEncrypted: ${status.serverEncrypted}`);
}

export function registerTransferCommands(program: Command): void {
  program.command('import <image> <account/container/blob>')
    .description('upload a VHD (fixed, dynamic, differencing) or raw image as a fixed-VHD page blob, skipping unallocated and zero ranges')
    .option('--base-image', 'a marketplace base image: stored plaintext even when the account encrypts (later writes are encrypted)')
    .option('--azure [mode]', 'apply Azure\'s 1 MiB size rule: round-up (default) or refuse')
    .option('--resume', 'continue an interrupted import of the same image into this blob')
    .option('--overwrite', 'replace an existing blob')
    .action(action(importCommand));
  program.command('export <account/container/blob[@snapshot]> <out>')
    .description('download a blob or snapshot (decrypted) as a disk image; unallocated ranges stay holes')
    .option('--format <format>', `${EXPORT_FORMATS.join(', ')}`, 'vhd')
    .action(action(exportCommand));
  program.command('copy <src-blob> <dst-blob>')
    .description('Copy Blob: the destination follows its own account\'s encryption (a copy into an encrypting account is encrypted)')
    .action(action(copyCommand));
  program.command('encrypt <account/container/blob>')
    .description('rewrite the blob\'s plaintext pages under the account\'s current data key (resumable: run it again)')
    .option('--all-generations', 'also re-encrypt pages of older data key generations')
    .action(action(encryptCommand));
}
