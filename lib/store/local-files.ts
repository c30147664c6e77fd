/**
 * The data files of a LocalPageStore: paths, one cached handle per open file, creation with durable directory
 * entries, and page copies (copy-before-write for snapshots). See local.ts for the layout.
 */
import { join } from 'node:path';

import { AlignedBufferPool } from '../xts/index.js';
import type { FileHandleIo, FileIo } from './file-io.js';
import { dataPath, redoPath } from './local-recovery.js';
import { MAX_WRITE_BYTES, PAGE_SIZE } from './types.js';

export class DataFiles {
  readonly #handles = new Map<string, Promise<FileHandleIo>>();
  readonly #direct = new Map<string, Promise<FileHandleIo | null>>();
  /** Aligned copies of extents whose memory is not aligned for direct I/O (a few, reused; see local-fill.ts). */
  readonly staging = new AlignedBufferPool(MAX_WRITE_BYTES, 4);
  /** False once direct I/O failed here (no O_DIRECT on this file system, or alignment it refuses). */
  #directOk = true;

  constructor(readonly io: FileIo, readonly dir: string) {}

  dataPath(file: string): string {
    return dataPath(this.dir, file);
  }

  redoPath(file: string): string {
    return redoPath(this.dir, file);
  }

  /** The open handle of `path`, opened on first use. */
  handle(path: string): Promise<FileHandleIo> {
    let h = this.#handles.get(path);
    if (h === undefined) {
      h = this.io.open(path, 'open');
      this.#handles.set(path, h);
      h.catch(() => this.#handles.delete(path));
    }
    return h;
  }

  /**
   * A second handle of `path` for direct I/O (bulk fills write through it), or null where there is none: the
   * FileIo has no direct I/O, the file system refuses it, or {@link directFailed} was called.
   */
  directHandle(path: string): Promise<FileHandleIo | null> {
    if (!this.#directOk || this.io.openDirect === undefined) return Promise.resolve(null);
    let h = this.#direct.get(path);
    if (h === undefined) {
      h = this.io.openDirect(path).catch(() => {
        this.#directOk = false;
        return null;
      });
      this.#direct.set(path, h);
    }
    return h;
  }

  /** Whether direct I/O is still on (see {@link directHandle}). */
  get directEnabled(): boolean {
    return this.#directOk;
  }

  /** A direct write was refused (EINVAL): every later write is buffered. */
  directFailed(): void {
    this.#directOk = false;
  }

  /** Create a data file (and for blobs its redo file) and make the directory entries durable. */
  async create(file: string, withRedo: boolean): Promise<void> {
    for (const path of withRedo ? [this.dataPath(file), this.redoPath(file)] : [this.dataPath(file)]) {
      const h = await this.io.open(path, 'create');
      await h.datasync();
      this.#handles.set(path, Promise.resolve(h));
    }
    await this.io.syncDir(this.dir);
  }

  /** Close the handles of a file about to be unlinked. */
  async forget(file: string): Promise<void> {
    for (const path of [this.dataPath(file), this.redoPath(file)]) {
      const h = this.#handles.get(path);
      this.#handles.delete(path);
      if (h !== undefined) await (await h).close();
      const d = this.#direct.get(path);
      this.#direct.delete(path);
      await (await d)?.close();
    }
  }

  /** Copy pages `[start, end)` from one data file to the same place in another (no sync). */
  async copyPages(from: string, to: string, start: number, end: number): Promise<void> {
    const src = await this.handle(this.dataPath(from));
    const dst = await this.handle(this.dataPath(to));
    const buf = new Uint8Array(Math.min(MAX_WRITE_BYTES, (end - start) * PAGE_SIZE));
    for (let at = start * PAGE_SIZE; at < end * PAGE_SIZE; at += buf.length) {
      const n = Math.min(buf.length, end * PAGE_SIZE - at);
      await src.read(buf, 0, n, at);
      await dst.write(buf, 0, n, at);
    }
  }

  async closeAll(): Promise<void> {
    for (const h of [...this.#handles.values(), ...this.#direct.values()]) {
      await (await h.catch(() => undefined))?.close().catch(() => undefined);
    }
    this.#handles.clear();
    this.#direct.clear();
  }

  static in(directory: string, dataDir: string, io: FileIo): DataFiles {
    return new DataFiles(io, join(directory, dataDir));
  }
}
