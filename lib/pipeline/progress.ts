/**
 * Progress of an import or export: bytes moved, bytes passed over, throughput and an ETA, reported to an
 * optional callback at most every {@link PROGRESS_INTERVAL_MS} (and always once at the end).
 */

/** Smallest gap between two progress events, except the last. */
export const PROGRESS_INTERVAL_MS = 100;

export interface PipelineProgress {
  /** Bytes of data moved so far (written to the blob on import, to the file on export). */
  bytesDone: number;
  /** Virtual bytes passed over without moving data: unallocated ranges, zero runs, ranges already imported. */
  bytesSkipped: number;
  /** The virtual size covered when done: `bytesDone + bytesSkipped` reaches it at the end. */
  bytesTotal: number;
  /** Bytes of data moved per second since the start. */
  throughput: number;
  /** Seconds left at the average pace so far over the virtual size; null before there is a pace. */
  etaSeconds: number | null;
  elapsedMs: number;
}

export type ProgressListener = (progress: PipelineProgress) => void;

export class ProgressTracker {
  bytesDone = 0;
  bytesSkipped = 0;
  readonly #started = performance.now();
  #lastEmit = -Infinity;

  constructor(readonly bytesTotal: number, private readonly listener: ProgressListener | undefined) {}

  get elapsedMs(): number {
    return performance.now() - this.#started;
  }

  snapshot(): PipelineProgress {
    const elapsedMs = this.elapsedMs;
    const seconds = elapsedMs / 1000;
    const covered = this.bytesDone + this.bytesSkipped;
    const pace = seconds > 0 ? covered / seconds : 0;
    return {
      bytesDone: this.bytesDone,
      bytesSkipped: this.bytesSkipped,
      bytesTotal: this.bytesTotal,
      throughput: seconds > 0 ? this.bytesDone / seconds : 0,
      etaSeconds: pace > 0 ? Math.max(0, this.bytesTotal - covered) / pace : null,
      elapsedMs,
    };
  }

  /** Report, unless the last report is too recent (`final` always reports). */
  emit(final = false): void {
    if (this.listener === undefined) return;
    const now = performance.now();
    if (!final && now - this.#lastEmit < PROGRESS_INTERVAL_MS) return;
    this.#lastEmit = now;
    this.listener(this.snapshot());
  }
}
