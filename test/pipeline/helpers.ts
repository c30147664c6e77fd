/** Shared set-up of the pipeline tests: a blob fixture, temp dirs, qemu-img, and image builders. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import type { PageBlobService } from '../../lib/blob/index.js';
import type { BlobOrSnapshotRef } from '../../lib/store/index.js';
import { createImageWriter, type WriterFormat } from '../../lib/vhd/index.js';

export { fixture, type Fixture } from '../blob/helpers.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
const run = promisify(execFile);

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function qemuImg(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('qemu-img', args, { maxBuffer: 64 * MiB });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A sparse raw file of `size` bytes with random data in `regions` ([offset, length], 512-aligned). */
export async function makeRaw(path: string, size: number, regions: Array<[number, number]>): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(size);
    for (const [offset, length] of regions) await handle.write(randomBytes(length), 0, length, offset);
  } finally {
    await handle.close();
  }
}

/** An image written by our own writer with random data in `regions`. */
export async function makeImage(path: string, format: WriterFormat, size: number, regions: Array<[number, number]>): Promise<void> {
  const writer = await createImageWriter(path, { format, virtualSize: size });
  for (const [offset, length] of [...regions].sort((a, b) => a[0] - b[0])) await writer.write(offset, randomBytes(length));
  await writer.finish();
}

/** Merge [start, end) ranges that touch or overlap. */
export function mergeRanges(ranges: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [s, e] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last !== undefined && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Allocated ranges of a blob as [start, end), merged. */
export async function blobRanges(blobs: PageBlobService, ref: BlobOrSnapshotRef): Promise<Array<[number, number]>> {
  return mergeRanges((await blobs.getPageRanges(ref)).map((r): [number, number] => [r.start, r.end + 1]));
}

/** Read [offset, offset + length) of a blob, decrypted, in 64 MiB steps. */
export async function readBlob(blobs: PageBlobService, ref: BlobOrSnapshotRef, offset: number, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let o = offset; o < offset + length; o += 64 * MiB) {
    parts.push(Buffer.from(await blobs.readRange(ref, o, Math.min(64 * MiB, offset + length - o))));
  }
  return Buffer.concat(parts);
}

export async function qemuIo(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run('qemu-io', args, { maxBuffer: 64 * MiB });
    return { code: 0, stderr };
  } catch (error) {
    const e = error as { code?: number; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stderr: e.stderr ?? String(error) };
  }
}
