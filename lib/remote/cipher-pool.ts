/**
 * The upload's ciphertext buffers (seal.ts): 4 MiB, page aligned (the fused seal's non-temporal stores need
 * 64 bytes), reused, and shared by every upload of the process. They come from lib/xts `poolBuffer`: mappings
 * of their own that child processes do not share, so a spawn between two uploads does not make the next one
 * take a copy-on-write fault per page of the pool (about 11,000 faults, 12 ms of CPU, measured in the bench,
 * which starts an Azurite before every upload).
 *
 * An upload at the default concurrency holds about eleven of them at once (eight Put Pages in flight, the seal
 * passes, one extent waiting for a slot). Making them is not free: 44 MiB of new memory is faulted in page by
 * page (on this kind of VM about 0.45 ms per MiB, ~20 ms), and V8 answers that much new external memory with
 * extra scavenges and a mark-compact on the main thread and its helpers. Measured on the 2-core bench machine, a
 * fresh set cost each 1 GiB upload about 0.11 CPU-s (0.08 s off the main thread: V8's helpers and the
 * first-touch faults; 0.03 s on it), close to what the XTS pass itself costs. So the buffers outlive one upload:
 * a process that uploads again (a service importing disks, a batch of blobs) finds them warm, and a process that
 * stops uploading gives them back after {@link SHARED_POOL_IDLE_MS} of quiet (an unref'd timer, so it never
 * keeps a process alive).
 *
 * Ciphertext is not secret, and a reused buffer still holds an earlier upload's ciphertext: the seal hands out
 * only the bytes of its runs, all written by the XTS pass, never stale ones.
 */
import { MAX_WRITE_BYTES } from '../store/index.js';
import { poolBuffer } from '../xts/index.js';

/** What the native seal pass needs of a destination for its non-temporal stores. */
export const STREAM_ALIGNMENT = 64;
/** How long the shared pool keeps its free buffers after it was last used. */
export const SHARED_POOL_IDLE_MS = 30_000;
/** Free buffers the shared pool keeps (64 MiB): one upload at the default concurrency, with room to spare. */
export const SHARED_POOL_KEEP = 16;

export interface CipherPoolOptions {
  /** Free buffers kept; beyond this, returned buffers are left to the garbage collector. */
  keep: number;
  /** Free buffers are dropped once the pool has been idle (nothing taken or returned) this long. */
  idleMs: number;
}

/** Reusable ciphertext buffers of {@link MAX_WRITE_BYTES}; longer requests get a buffer of their own. */
export class CipherPool {
  readonly #free: Buffer[] = [];
  readonly #keep: number;
  readonly #idleMs: number;
  #lastUse = 0;
  #timer: NodeJS.Timeout | undefined;
  #made = 0;

  constructor(options: CipherPoolOptions) {
    const { keep, idleMs } = options;
    if (!Number.isSafeInteger(keep) || keep < 0) throw new RangeError(`keep must be a non-negative integer, got ${String(keep)}`);
    if (!Number.isSafeInteger(idleMs) || idleMs < 1) throw new RangeError(`idleMs must be a positive integer, got ${String(idleMs)}`);
    this.#keep = keep;
    this.#idleMs = idleMs;
  }

  /** Buffers this pool has made (how well reuse works). */
  get made(): number {
    return this.#made;
  }

  /** Free buffers held now. */
  get free(): number {
    return this.#free.length;
  }

  /**
   * `length` bytes (holding whatever an earlier taker wrote; page aligned when at most {@link MAX_WRITE_BYTES})
   * and the function that gives them back. A second call of `release` is ignored; the buffer must not be used after the first.
   */
  take(length: number): { buffer: Buffer; release?: () => void } {
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be a non-negative integer, got ${String(length)}`);
    if (length > MAX_WRITE_BYTES) return { buffer: Buffer.allocUnsafeSlow(length) };
    this.#touch();
    let whole = this.#free.pop();
    if (whole === undefined) {
      whole = poolBuffer(MAX_WRITE_BYTES);
      this.#made++;
    }
    const buffer = whole;
    let returned = false;
    return {
      buffer: buffer.subarray(0, length),
      release: () => {
        if (returned) return;
        returned = true;
        this.#touch();
        if (this.#free.length < this.#keep) this.#free.push(buffer);
      },
    };
  }

  /** Drop every free buffer now (buffers still out are not affected; they are kept when given back). */
  drain(): void {
    this.#free.length = 0;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #touch(): void {
    this.#lastUse = performance.now();
    if (this.#timer === undefined) this.#arm(this.#idleMs);
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const quiet = performance.now() - this.#lastUse;
      if (quiet >= this.#idleMs) this.#free.length = 0;
      else this.#arm(this.#idleMs - quiet);
    }, Math.max(1, Math.ceil(ms)));
    this.#timer.unref();
  }
}

/** The pool every {@link sealExtents} call of this process shares. */
export const sharedCipherPool = new CipherPool({ keep: SHARED_POOL_KEEP, idleMs: SHARED_POOL_IDLE_MS });
