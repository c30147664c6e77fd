/**
 * A read-only image file opened through a file handle: positioned reads that never pass the real file size
 * (a short read is a truncated image, `VhdTruncated`), and the identity (device, inode) used to detect
 * differencing-chain loops. Nothing here reads a whole file into memory.
 */
import { open, type FileHandle } from 'node:fs/promises';

import { VhdFormatError } from './errors.js';

export class ImageFile {
  readonly path: string;
  readonly size: number;
  /** `dev:ino` of the open file: the same file reached through two paths has one identity. */
  readonly identity: string;
  #handle: FileHandle | null;

  private constructor(path: string, handle: FileHandle, size: number, identity: string) {
    this.path = path;
    this.#handle = handle;
    this.size = size;
    this.identity = identity;
  }

  static async open(path: string): Promise<ImageFile> {
    const handle = await open(path, 'r');
    try {
      const stat = await handle.stat({ bigint: true });
      if (!stat.isFile()) throw new TypeError(`${path} is not a regular file`);
      if (stat.size > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`${path} is larger than 2^53 - 1 bytes`);
      return new ImageFile(path, handle, Number(stat.size), `${stat.dev}:${stat.ino}`);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Read `length` bytes at `position`, which must lie inside the file; `field` names the structure read. */
  async readAt(position: number, length: number, field: string): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(out, 0, length, position, field);
    return out;
  }

  /** Read exactly `length` bytes at `position` into `target[targetOffset..]`. */
  async readInto(target: Uint8Array, targetOffset: number, length: number, position: number, field: string): Promise<void> {
    if (position < 0 || position + length > this.size) {
      throw new VhdFormatError('VhdTruncated', field,
        `${field} at ${position} (+${length} bytes) lies past the end of the ${this.size}-byte file`);
    }
    const handle = this.#requireOpen();
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(target, targetOffset + done, length - done, position + done);
      if (bytesRead === 0) {
        throw new VhdFormatError('VhdTruncated', field, `the file ended at ${position + done} while reading ${field}`);
      }
      done += bytesRead;
    }
  }

  get closed(): boolean {
    return this.#handle === null;
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = null;
    await handle?.close();
  }

  #requireOpen(): FileHandle {
    if (this.#handle === null) throw new Error(`image file ${this.path} is closed`);
    return this.#handle;
  }
}
