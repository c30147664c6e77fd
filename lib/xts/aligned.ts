/**
 * Page-aligned buffers for the bulk data paths (imports and fills), from native memory.
 *
 * Two things make a 4 MiB buffer that is reused cheaper than a fresh one: a fresh `Buffer` is new memory that
 * the kernel must fault in page by page (on this kind of VM, where idle guest memory goes back to the host,
 * that costs more than encrypting it), and a buffer whose first byte sits on a 4096-byte boundary can be
 * written with O_DIRECT, past the page cache. {@link AlignedBufferPool} keeps a few such buffers and hands
 * them out again; it never blocks: when none is free it makes one, and a buffer that is never given back is
 * simply collected.
 *
 * These buffers hold disk data, never keys (keys stay in native key slots or `Buffer.alloc` buffers).
 */
import { native } from './native.js';

/** The alignment of every buffer made here: enough for O_DIRECT on any Linux block device. */
export const IO_ALIGNMENT = 4096;

/** A zero-filled buffer of `bytes` (1 .. 2^30) whose address is a multiple of {@link IO_ALIGNMENT}. */
export function alignedBuffer(bytes: number): Buffer {
  return native.alignedBuffer(checkBufferBytes(bytes));
}

/** `bytes` when it is a whole number from 1 to 2^30 (the sizes the native buffers take), else a RangeError. */
function checkBufferBytes(bytes: number): number {
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 1 || bytes > 2 ** 30) {
    throw new RangeError(`bytes must be a whole number from 1 to 2^30, got ${String(bytes)}`);
  }
  return bytes;
}

/**
 * A buffer of `bytes` (1 .. 2^30) zero bytes whose address is a multiple of {@link IO_ALIGNMENT}, made to be
 * kept and reused by a pool (lib/remote/cipher-pool.ts). On Linux it is an anonymous mapping of its own, marked
 * `MADV_DONTFORK`, and nothing here touches its pages:
 * - whoever writes it first takes its page faults (the libuv pool, for the upload's ciphertext), not the main
 *   thread;
 * - a child process does not share it. `child_process.spawn` forks on Linux, and a fork write-protects every
 *   private page of the parent, so a reused buffer written after a spawn took one copy-on-write fault per 4 KiB
 *   page (1024 per 4 MiB buffer; about 11,000 and 12 ms per upload for the cipher pool). The child never sees
 *   these pages: Node's children exec at once, and nothing of ours runs in a forked child;
 * - its memory goes back to the system when the Buffer is collected.
 * Elsewhere it is {@link alignedBuffer}'s memory. Never for keys.
 */
export function poolBuffer(bytes: number): Buffer {
  return native.poolBuffer(checkBufferBytes(bytes));
}

/** Whether `view` starts on a {@link IO_ALIGNMENT} boundary in memory (what O_DIRECT needs of a buffer). */
export function isIoAligned(view: Uint8Array): boolean {
  if (!(view instanceof Uint8Array)) throw new TypeError('view must be a Uint8Array');
  return native.addressAlignment(view) >= IO_ALIGNMENT;
}

/**
 * A few aligned buffers of `bufferBytes`, reused. `take(n)` hands out the first `n` bytes of a free one (or of
 * a new one when none is free; a reused buffer holds old bytes, so the taker overwrites all `n`); `give`
 * takes back a view of one of this pool's buffers, once; anything else, or a second give, is ignored. At most
 * `keep` free buffers are kept.
 */
export class AlignedBufferPool {
  readonly #free: Buffer[] = [];
  readonly #mine = new WeakSet<ArrayBufferLike>();
  readonly #out = new WeakSet<ArrayBufferLike>();
  #made = 0;

  constructor(readonly bufferBytes: number, readonly keep: number) {
    if (!Number.isSafeInteger(bufferBytes) || bufferBytes < 1 || bufferBytes > 2 ** 30) {
      throw new RangeError(`bufferBytes must be a whole number from 1 to 2^30, got ${String(bufferBytes)}`);
    }
    if (!Number.isSafeInteger(keep) || keep < 0) throw new RangeError(`keep must be a non-negative integer, got ${String(keep)}`);
  }

  /** Buffers this pool has made so far (a measure of how well reuse works). */
  get made(): number {
    return this.#made;
  }

  take(length: number = this.bufferBytes): Buffer {
    if (!Number.isSafeInteger(length) || length < 0 || length > this.bufferBytes) {
      throw new RangeError(`length must be a whole number from 0 to ${this.bufferBytes}, got ${String(length)}`);
    }
    let buffer = this.#free.pop();
    if (buffer === undefined) {
      buffer = alignedBuffer(this.bufferBytes);
      this.#mine.add(buffer.buffer);
      this.#made++;
    }
    this.#out.add(buffer.buffer);
    return length === this.bufferBytes ? buffer : buffer.subarray(0, length);
  }

  give(view: Uint8Array): void {
    const backing = view.buffer;
    if (!this.#mine.has(backing) || !this.#out.has(backing)) return;
    this.#out.delete(backing);
    if (this.#free.length < this.keep) this.#free.push(Buffer.from(backing, 0, this.bufferBytes));
  }
}
