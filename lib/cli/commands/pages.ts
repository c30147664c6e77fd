/**
 * `vdcrypt put` and `vdcrypt get`: Put Page (update or clear) from a file or stdin, and reads of any byte
 * range to stdout or a file. Both stream in chunks of at most 4 MiB (Azure's largest Put Page).
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';

import type { Command } from 'commander';

import { MAX_WRITE_BYTES, PAGE_SIZE } from '../../store/index.js';
import { action } from '../action.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { formatBytes, parseBlobAddress, parseSize, parseWritableBlob } from '../parse.js';
import { runLong } from '../progress.js';

function alignedOffset(text: string, what: string): number {
  const value = parseSize(text, what);
  if (value % PAGE_SIZE !== 0) throw new UsageError(`${what} must be a multiple of ${PAGE_SIZE} (whole pages), got ${value}`);
  return value;
}

/** Chunks of exactly `size` bytes (the last one shorter) from a stream. */
async function* fixedChunks(input: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    let rest = chunk;
    while (rest.length > 0) {
      const take = Math.min(size - held, rest.length);
      parts.push(rest.subarray(0, take));
      held += take;
      rest = rest.subarray(take);
      if (held === size) {
        yield Buffer.concat(parts, held);
        parts = [];
        held = 0;
      }
    }
  }
  if (held > 0) yield Buffer.concat(parts, held);
}

interface PutOptions { offset?: string; clear?: boolean; length?: string }

async function put(ctx: CliContext, address: string, source: string | undefined, opts: PutOptions): Promise<void> {
  const ref = parseWritableBlob(address);
  if (opts.offset === undefined) throw new UsageError('put needs --offset N (a multiple of 512)');
  const offset = alignedOffset(opts.offset, '--offset');
  const service = await ctx.blobs(ref.account);
  if (opts.clear === true) {
    if (source !== undefined) throw new UsageError('put --clear takes --length, not an input file');
    if (opts.length === undefined) throw new UsageError('put --clear needs --length N (a multiple of 512)');
    const length = alignedOffset(opts.length, '--length');
    await service.clearPages(ref, offset, length);
    ctx.emit({ blob: address, cleared: { start: offset, end: offset + length - 1 } }, () => `cleared ${formatBytes(length)} at ${offset} in ${address}`);
    return;
  }
  if (source === undefined) throw new UsageError('put needs an input file, or - for stdin');
  let total = 0;
  if (source !== '-') {
    total = (await stat(source)).size;
    if (total === 0 || total % PAGE_SIZE !== 0) {
      throw new UsageError(`${source} is ${total} bytes; put writes whole pages, so its size must be a positive multiple of ${PAGE_SIZE}`);
    }
  }
  const input: Readable = source === '-' ? process.stdin : createReadStream(source, { highWaterMark: MAX_WRITE_BYTES });
  let written = 0;
  let encrypted = 0;
  await runLong(ctx, 'put', `vdcrypt put ${address} --offset <${offset} + bytes written> ${source}`, async (run) => {
    for await (const chunk of fixedChunks(input, MAX_WRITE_BYTES)) {
      if (run.signal.aborted) break;
      if (chunk.length % PAGE_SIZE !== 0) {
        throw new UsageError(`the input ended after ${written + chunk.length} bytes, not a multiple of ${PAGE_SIZE}; ` +
          `the first ${written} bytes were written, the last ${chunk.length % PAGE_SIZE} were refused`);
      }
      if (await service.putPages(ref, offset + written, chunk)) encrypted += chunk.length;
      written += chunk.length;
      run.update({ moved: written, skipped: 0, processed: written, total: Math.max(total, written) });
    }
    if (run.signal.aborted) throw run.signal.reason;
  });
  if (written === 0) throw new UsageError('the input was empty; nothing was written');
  const state = encrypted === written ? 'encrypted' : encrypted === 0 ? 'plaintext' : `${formatBytes(encrypted)} encrypted`;
  ctx.emit({ blob: address, offset, bytes: written, encryptedBytes: encrypted },
    () => `wrote ${formatBytes(written)} at ${offset} in ${address} (${state})`);
}

interface Sink {
  write(data: Uint8Array): Promise<boolean>;
  close(): Promise<void>;
}

async function fileSink(path: string): Promise<Sink> {
  const handle = await open(path, 'w');
  return {
    async write(data) {
      let done = 0;
      while (done < data.length) done += (await handle.write(data, done, data.length - done)).bytesWritten;
      return true;
    },
    close: () => handle.close(),
  };
}

/** stdout with back-pressure; a closed pipe (`| head`) ends the read quietly. */
function stdoutSink(): Sink {
  let broken = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') broken = true;
  });
  return {
    write(data) {
      if (broken) return Promise.resolve(false);
      return new Promise((resolve) => {
        if (process.stdout.write(data)) resolve(!broken);
        else process.stdout.once('drain', () => resolve(!broken));
      });
    },
    close: () => Promise.resolve(),
  };
}

async function get(ctx: CliContext, address: string, opts: { offset?: string; length?: string; output?: string }): Promise<void> {
  const ref = parseBlobAddress(address);
  const service = await ctx.blobs(ref.account);
  const info = await service.getBlob(ref);
  const offset = opts.offset === undefined ? 0 : parseSize(opts.offset, '--offset');
  const length = opts.length === undefined ? info.size - offset : parseSize(opts.length, '--length');
  if (offset > info.size || offset + length > info.size) {
    throw new UsageError(`bytes ${offset}..${offset + length} pass the end of ${address} (${info.size} bytes)`);
  }
  const toStdout = opts.output === undefined || opts.output === '-';
  const sink = toStdout ? stdoutSink() : await fileSink(opts.output ?? '');
  try {
    for (let pos = offset; pos < offset + length;) {
      const take = Math.min(MAX_WRITE_BYTES, offset + length - pos);
      const data = await service.readRange(ref, pos, take);
      if (!(await sink.write(data))) break;
      pos += take;
    }
  } finally {
    await sink.close();
  }
  if (!toStdout) ctx.emit({ blob: address, offset, bytes: length, output: opts.output }, () => `read ${formatBytes(length)} of ${address} into ${opts.output ?? ''}`);
}

export function registerPageCommands(program: Command): void {
  program.command('put <account/container/blob> [file]')
    .description('Put Page: write a file (or - for stdin) at --offset, in pages of up to 4 MiB; --clear --length N clears')
    .option('--offset <bytes>', 'where to write, a multiple of 512 (suffixes K, M, G)')
    .option('--clear', 'clear pages instead of writing them (they become unallocated)')
    .option('--length <bytes>', 'with --clear: how many bytes, a multiple of 512')
    .action(action(put));
  program.command('get <account/container/blob[@snapshot]>')
    .description('read bytes (decrypted) to stdout, or to a file with -o')
    .option('--offset <bytes>', 'first byte (default 0)')
    .option('--length <bytes>', 'how many bytes (default: to the end)')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .action(action(get));
}
