/** `vdcrypt container create`, `blob create|show`, `snapshot` and `ranges`: page blobs and their page lists. */
import type { Command } from 'commander';

import type { BlobInfo } from '../../store/index.js';
import { action } from '../action.js';
import { formatBytes, parseBlobAddress, parseContainerAddress, parseSize, parseWritableBlob } from '../parse.js';

function blobView(info: BlobInfo): Record<string, unknown> {
  return {
    blob: `${info.account}/${info.container}/${info.blob}${info.snapshot === undefined ? '' : `@${info.snapshot}`}`,
    size: info.size, sequenceNumber: info.sequenceNumber, metadata: info.metadata,
    createdAt: info.createdAt.toISOString(), modifiedAt: info.modifiedAt.toISOString(), snapshots: info.snapshots,
  };
}

export function registerBlobCommands(program: Command): void {
  program.command('container').description('containers of page blobs')
    .command('create <account/container>')
    .description('create a container in an account')
    .action(action(async (ctx, address: string) => {
      const { account, container } = parseContainerAddress(address);
      await (await ctx.blobs(account)).createContainer(account, container);
      ctx.emit({ container: `${account}/${container}` }, () => `created container ${account}/${container}`);
    }));

  const blob = program.command('blob').description('page blobs');
  blob.command('create <account/container/blob>')
    .description('create an empty page blob (all pages unallocated)')
    .requiredOption('--size <bytes>', 'size, a multiple of 512; suffixes K, M, G, T (e.g. 64M)')
    .option('--overwrite', 'replace an existing blob')
    .action(action(async (ctx, address: string, opts: { size: string; overwrite?: boolean }) => {
      const ref = parseWritableBlob(address);
      const size = parseSize(opts.size, '--size');
      const info = await (await ctx.blobs(ref.account)).createBlob(ref, size, { overwrite: opts.overwrite === true });
      ctx.emit(blobView(info), () => `created page blob ${address} of ${formatBytes(size)} (${size} bytes)`);
    }));
  blob.command('show <account/container/blob[@snapshot]>')
    .description('blob properties: size, sequence number, metadata, snapshots')
    .action(action(async (ctx, address: string) => {
      const ref = parseBlobAddress(address);
      const info = await (await ctx.blobs(ref.account)).getBlob(ref);
      const view = blobView(info);
      ctx.emit(view, () => Object.entries(view).map(([k, v]) => `${k.padEnd(15)} ${typeof v === 'string' || typeof v === 'number' ? v : JSON.stringify(v)}`));
    }));

  program.command('snapshot <account/container/blob>')
    .description('take a read-only snapshot; prints its id (for export blob@<id> and ranges --diff <id>)')
    .action(action(async (ctx, address: string) => {
      const ref = parseWritableBlob(address);
      const id = await (await ctx.blobs(ref.account)).createSnapshot(ref);
      ctx.emit({ snapshot: id }, () => id);
    }));

  program.command('ranges <account/container/blob[@snapshot]>')
    .description('allocated page ranges (inclusive ends, as Get Page Ranges); --diff lists what changed since a snapshot')
    .option('--diff <snapshot>', 'only ranges written (or cleared) since this snapshot')
    .action(action(async (ctx, address: string, opts: { diff?: string }) => {
      const ref = parseBlobAddress(address);
      const service = await ctx.blobs(ref.account);
      const line = (r: { start: number; end: number }): string => `${r.start}-${r.end}  (${formatBytes(r.end - r.start + 1)})`;
      if (opts.diff === undefined) {
        const ranges = await service.getPageRanges(ref);
        ctx.emit({ ranges }, () => ranges.map(line));
        return;
      }
      const diff = await service.diffRanges(ref, opts.diff);
      ctx.emit({ ranges: diff.updated, cleared: diff.cleared }, () => [
        ...diff.updated.map((r) => `updated ${line(r)}`), ...diff.cleared.map((r) => `cleared ${line(r)}`),
      ]);
    }));
}
