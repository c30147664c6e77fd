/**
 * The encryption map of a blob: its bytes cut into equal cells. A cell is unallocated only when nothing in it is
 * allocated (so a small write still shows), `mixed` when it holds both plaintext and encrypted bytes (so a few
 * encrypted pages inside a plaintext region still show), else the state of its allocated bytes (for several
 * data key generations, the one holding most bytes).
 *
 *   offset 0                                                                  size
 *   │ plaintext base image ........ │ encrypted boot writes │ unallocated ......│
 *   [░][░][░][░][░][░][░][░][░][░][░][█][█][·][·][·][·][·][·][·][·][·][·][·][·]   one cell = size / cells
 *
 * Shared by the terminal strip (terminal.ts) and the SVG (svg.ts).
 */
import type { EncryptionStatus } from '../../blob/index.js';
import { PAGE_SIZE } from '../../store/index.js';

/** A cell's state: {@link UNALLOCATED}, {@link MIXED}, {@link PLAINTEXT}, or the AEK generation (>= 1) of encrypted bytes. */
export type CellState = number;
export const MIXED = -2;
export const UNALLOCATED = -1;
export const PLAINTEXT = 0;

export interface EncryptionMap {
  status: EncryptionStatus;
  cellBytes: number;
  cells: CellState[];
  /** AEK generations present in the blob, ascending. */
  generations: number[];
  /** Encrypted bytes per generation. */
  bytesByGeneration: Map<number, number>;
  /** Cells holding both plaintext and encrypted bytes. */
  mixedCells: number;
}

export const DEFAULT_CELLS = 256;

export function buildMap(status: EncryptionStatus, wantedCells = DEFAULT_CELLS): EncryptionMap {
  // Whole pages per cell; the last cell also takes the remainder (e.g. the footer page of a fixed-VHD blob).
  const cellBytes = Math.max(PAGE_SIZE, Math.floor(status.size / Math.max(1, wantedCells) / PAGE_SIZE) * PAGE_SIZE);
  const cellCount = Math.max(1, Math.floor(status.size / cellBytes));
  const cellOf = (offset: number): number => Math.min(cellCount - 1, Math.floor(offset / cellBytes));
  const cellEnd = (cell: number): number => (cell === cellCount - 1 ? Math.max(status.size, cellBytes * cellCount) : (cell + 1) * cellBytes);
  const tally: Array<Map<number, number>> = Array.from({ length: cellCount }, () => new Map());
  const bytesByGeneration = new Map<number, number>();
  for (const r of status.ranges) {
    const tag = r.state === 'plaintext' ? PLAINTEXT : r.generation ?? 1;
    if (tag !== PLAINTEXT) bytesByGeneration.set(tag, (bytesByGeneration.get(tag) ?? 0) + (r.end - r.start + 1));
    for (let cell = cellOf(r.start); cell <= cellOf(r.end); cell++) {
      const lo = Math.max(r.start, cell * cellBytes);
      const hi = Math.min(r.end + 1, cellEnd(cell));
      const counts = tally[cell];
      if (counts !== undefined && hi > lo) counts.set(tag, (counts.get(tag) ?? 0) + hi - lo);
    }
  }
  const cells = tally.map((counts) => {
    if (counts.has(PLAINTEXT) && counts.size > 1) return MIXED;
    let best: CellState = UNALLOCATED;
    let most = 0;
    for (const [tag, bytes] of counts) {
      if (bytes > most || (bytes === most && tag > best)) {
        best = tag;
        most = bytes;
      }
    }
    return best;
  });
  const generations = [...bytesByGeneration.keys()].sort((a, b) => a - b);
  return { status, cellBytes, cells, generations, bytesByGeneration, mixedCells: cells.filter((c) => c === MIXED).length };
}
