/**
 * The file operations LocalPageStore performs, behind a small interface so that tests can inject failures
 * (EIO, ENOSPC) at any write or sync without root or a faulty disk. {@link nodeFileIo} is the real one.
 *
 * Hole punching: Node has no `fallocate(2)`. We run util-linux `fallocate --punch-hole` (FALLOC_FL_PUNCH_HOLE |
 * FALLOC_FL_KEEP_SIZE), many ranges per spawned shell, which both zeroes the bytes and returns whole
 * filesystem blocks to the free pool; partial blocks (a lone 512-byte page in a 4 KiB block) are zeroed in
 * place. Where punching is unavailable (no `fallocate` binary, or a filesystem without support) the ranges are
 * overwritten with zeros instead: old bytes still vanish, but the space is not returned; {@link
 * FileIo.canPunchHoles} tells which.
 */
import { execFile } from 'node:child_process';
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Bytes of zeros written per call when punching is unavailable. */
const ZERO_CHUNK_BYTES = 1024 * 1024;
/** Ranges per spawned shell when punching holes. */
const PUNCH_BATCH = 256;

export interface ByteRange {
  offset: number;
  length: number;
}

export interface FileHandleIo {
  /** Read exactly `length` bytes at `position` into `buffer[offset..]`; bytes past the end of file read as 0. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<void>;
  /** Write all of `buffer[offset .. offset + length)` at `position`. */
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<void>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  /** Current length in bytes. */
  size(): Promise<number>;
  /** Allocated bytes on disk (st_blocks * 512). */
  allocated(): Promise<number>;
  close(): Promise<void>;
}

export interface FileIo {
  /** `create` fails if the file exists; `open` fails if it does not. Read-write either way. */
  open(path: string, mode: 'create' | 'open'): Promise<FileHandleIo>;
  /**
   * Open an existing file a second time for direct I/O (O_DIRECT: writes go to the device, past the page
   * cache; buffers, offsets and lengths must be aligned, else a write fails with EINVAL). Rejects where the
   * file system has no direct I/O. Optional: without it every write is buffered.
   */
  openDirect?(path: string): Promise<FileHandleIo>;
  /** Unlink; a missing file is not an error. */
  unlink(path: string): Promise<void>;
  /** Make directory entries durable (fsync on the directory). */
  syncDir(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  list(dir: string): Promise<string[]>;
  /** Zero `ranges` of the file at `path` (open as `handle`) and free their blocks where possible. */
  punchHoles(path: string, handle: FileHandleIo, ranges: ByteRange[]): Promise<void>;
  /** Whether {@link punchHoles} frees space (true) or only writes zeros (false). Probed in `dir`. */
  canPunchHoles(dir: string): Promise<boolean>;
}

class NodeFileHandle implements FileHandleIo {
  constructor(private readonly fh: fs.FileHandle) {}

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buffer, offset + done, length - done, position + done);
      if (bytesRead === 0) {
        buffer.fill(0, offset + done, offset + length);
        return;
      }
      done += bytesRead;
    }
  }

  async write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const { bytesWritten } = await this.fh.write(buffer, offset + done, length - done, position + done);
      done += bytesWritten;
    }
  }

  datasync(): Promise<void> {
    return this.fh.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.fh.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }

  async allocated(): Promise<number> {
    return (await this.fh.stat()).blocks * 512;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

async function zeroRanges(handle: FileHandleIo, ranges: ByteRange[]): Promise<void> {
  const zeros = new Uint8Array(ZERO_CHUNK_BYTES);
  for (const r of ranges) {
    for (let at = 0; at < r.length; at += ZERO_CHUNK_BYTES) {
      await handle.write(zeros, 0, Math.min(ZERO_CHUNK_BYTES, r.length - at), r.offset + at);
    }
  }
}

/** One shell per batch: `fallocate -p -o OFFSET -l LENGTH FILE` for each range, stopping at the first failure. */
const PUNCH_SCRIPT = 'f=$1; shift; while [ $# -gt 1 ]; do fallocate -p -o "$1" -l "$2" "$f" || exit 1; shift 2; done';

async function punchWithFallocate(path: string, ranges: ByteRange[]): Promise<void> {
  for (let i = 0; i < ranges.length; i += PUNCH_BATCH) {
    const args = ['-c', PUNCH_SCRIPT, 'punch', path];
    for (const r of ranges.slice(i, i + PUNCH_BATCH)) args.push(String(r.offset), String(r.length));
    await run('/bin/sh', args);
  }
}

export function nodeFileIo(): FileIo {
  let punch: boolean | undefined;
  return {
    async open(path, mode) {
      const flags = mode === 'create'
        ? constants.O_RDWR | constants.O_CREAT | constants.O_EXCL
        : constants.O_RDWR;
      return new NodeFileHandle(await fs.open(path, flags, 0o600));
    },
    async openDirect(path) {
      return new NodeFileHandle(await fs.open(path, constants.O_RDWR | constants.O_DIRECT));
    },
    async unlink(path) {
      await fs.rm(path, { force: true });
    },
    async syncDir(path) {
      const fh = await fs.open(path, constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    },
    async mkdir(path) {
      await fs.mkdir(path, { recursive: true, mode: 0o700 });
    },
    list(dir) {
      return fs.readdir(dir);
    },
    async punchHoles(path, handle, ranges) {
      const live = ranges.filter((r) => r.length > 0);
      if (live.length === 0) return;
      if (punch === true) await punchWithFallocate(path, live);
      else await zeroRanges(handle, live);
    },
    async canPunchHoles(dir) {
      if (punch !== undefined) return punch;
      const probe = join(dir, `.punch-probe-${process.pid}`);
      const BLOCK = 64 * 1024;
      try {
        const fh = await fs.open(probe, 'w+', 0o600);
        try {
          await fh.write(new Uint8Array(2 * BLOCK).fill(1), 0, 2 * BLOCK, 0);
          await fh.datasync();
          const before = (await fh.stat()).blocks;
          await punchWithFallocate(probe, [{ offset: 0, length: BLOCK }]);
          const after = (await fh.stat()).blocks;
          const check = new Uint8Array(1);
          await fh.read(check, 0, 1, 0);
          punch = after < before && check[0] === 0;
        } finally {
          await fh.close();
        }
      } catch {
        punch = false;
      } finally {
        await fs.rm(probe, { force: true });
      }
      return punch;
    },
  };
}
