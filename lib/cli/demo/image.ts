/**
 * The demo's disk: a small fixed VHD (lib/vhd writer) whose contents look like a formatted disk, so the maps
 * and byte comparisons have something recognisable to show: an MBR-style boot sector, a superblock, an inode
 * table and some file blocks, with zeros between them (which import skips).
 */
import { createImageWriter, SECTOR_SIZE } from '../../vhd/index.js';

export const DEMO_DISK_SIZE = 64 * 1024 * 1024;
const MIB = 1024 * 1024;
const BLOCK = 4096;
const BOOT_SIGNATURE_OFFSET = 510;

/** The regions of the demo disk that hold data: [offset, length, what]. */
export const DEMO_REGIONS: ReadonlyArray<readonly [number, number, string]> = [
  [0, 64 * 1024, 'boot sector and partition table'],
  [1 * MIB, 1 * MIB, 'superblock and inode table'],
  [4 * MIB, 12 * MIB, 'files of the base image'],
  [24 * MIB, 2 * MIB, 'package cache'],
];

function fillRegion(disk: Buffer, offset: number, length: number, what: string): void {
  for (let pos = offset; pos < offset + length; pos += BLOCK) {
    const line = `vdcrypt demo disk | ${what} | block ${pos / BLOCK} | `;
    disk.fill(line, pos, Math.min(pos + BLOCK, offset + length));
  }
}

/** Write the demo disk to `path`; returns its virtual contents (the bytes a reader of the disk sees). */
export async function writeDemoImage(path: string): Promise<{ disk: Buffer; dataBytes: number }> {
  const disk = Buffer.alloc(DEMO_DISK_SIZE);
  let dataBytes = 0;
  for (const [offset, length, what] of DEMO_REGIONS) {
    fillRegion(disk, offset, length, what);
    dataBytes += length;
  }
  disk.writeUInt16LE(0xaa55, BOOT_SIGNATURE_OFFSET);
  const writer = await createImageWriter(path, {
    format: 'fixed', virtualSize: DEMO_DISK_SIZE, timestamp: new Date(Date.UTC(2024, 0, 1)),
  });
  try {
    for (const [offset, length] of DEMO_REGIONS) await writer.write(offset, disk.subarray(offset, offset + length));
    await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return { disk, dataBytes };
}

/** Writes a booted VM makes: [offset, length, what]; all page aligned. */
export const BOOT_WRITES: ReadonlyArray<readonly [number, number, string]> = [
  [1 * MIB, 64 * 1024, 'journal replay after first boot'],
  [8 * MIB, 512 * 1024, 'updated system files'],
  [40 * MIB, 2 * MIB, 'swap and logs'],
  [60 * MIB, 32 * SECTOR_SIZE, 'cloud-init state'],
];

export function bootWriteData(offset: number, length: number, what: string): Buffer {
  const data = Buffer.alloc(length);
  data.fill(`after boot | ${what} | offset ${offset} | `);
  return data;
}
