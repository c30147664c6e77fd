/** All-zero page detection: a plaintext zero page is never sent (it stays unallocated and reads as zeros). */
import { PAGE_SIZE } from '../store/index.js';

const WORDS_PER_PAGE = PAGE_SIZE / 4;

/**
 * The runs of non-zero pages in `data` (a multiple of 512 bytes), as page indexes `[start, end)` relative to
 * `data`, each at most `maxPages` long. `zeroPages` receives the count of skipped pages.
 */
export function* nonZeroRuns(data: Uint8Array, maxPages: number, onZero: (pages: number) => void): Generator<{ start: number; end: number }> {
  const pages = data.length / PAGE_SIZE;
  const words = data.byteOffset % 4 === 0 ? new Uint32Array(data.buffer, data.byteOffset, data.length / 4) : undefined;
  const zero = (p: number): boolean => {
    if (words !== undefined) {
      for (let w = p * WORDS_PER_PAGE, end = w + WORDS_PER_PAGE; w < end; w++) if (words[w] !== 0) return false;
      return true;
    }
    for (let b = p * PAGE_SIZE, end = b + PAGE_SIZE; b < end; b++) if (data[b] !== 0) return false;
    return true;
  };
  let p = 0;
  let zeros = 0;
  while (p < pages) {
    if (zero(p)) {
      zeros++;
      p++;
      continue;
    }
    const start = p;
    while (p < pages && p - start < maxPages && !zero(p)) p++;
    yield { start, end: p };
  }
  if (zeros > 0) onZero(zeros);
}
