/** Table-driven tests of the page-run algebra (merge, split, clear, resize, diff). */
import { describe, expect, it } from 'vitest';

import { diffRuns, gaps, overlay, type Run, toTaggedRanges, truncateRuns } from '../../lib/store/ranges.js';

type R = [start: number, end: number, value: string];
const runs = (rs: R[]): Run<string>[] => rs.map(([start, end, value]) => ({ start, end, value }));
const plain = (rs: Run<string>[]): R[] => rs.map((r) => [r.start, r.end, r.value]);
const same = (a: string, b: string): boolean => a === b;

describe('overlay', () => {
  const cases: { name: string; before: R[]; start: number; end: number; value: string | null; after: R[] }[] = [
    { name: 'into empty', before: [], start: 2, end: 4, value: 'a', after: [[2, 4, 'a']] },
    { name: 'merge with left neighbour', before: [[0, 2, 'a']], start: 2, end: 4, value: 'a', after: [[0, 4, 'a']] },
    { name: 'merge with right neighbour', before: [[4, 6, 'a']], start: 2, end: 4, value: 'a', after: [[2, 6, 'a']] },
    { name: 'bridge two runs', before: [[0, 2, 'a'], [4, 6, 'a']], start: 2, end: 4, value: 'a', after: [[0, 6, 'a']] },
    { name: 'adjacent, other value', before: [[0, 2, 'a']], start: 2, end: 4, value: 'b', after: [[0, 2, 'a'], [2, 4, 'b']] },
    { name: 'split in the middle', before: [[0, 10, 'a']], start: 3, end: 5, value: 'b', after: [[0, 3, 'a'], [3, 5, 'b'], [5, 10, 'a']] },
    { name: 'same value is a no-op', before: [[0, 10, 'a']], start: 3, end: 5, value: 'a', after: [[0, 10, 'a']] },
    { name: 'cover several', before: [[0, 2, 'a'], [3, 4, 'b'], [5, 8, 'c']], start: 1, end: 6, value: 'd',
      after: [[0, 1, 'a'], [1, 6, 'd'], [6, 8, 'c']] },
    { name: 'exact replace', before: [[2, 4, 'a']], start: 2, end: 4, value: 'b', after: [[2, 4, 'b']] },
    { name: 'clear middle', before: [[0, 10, 'a']], start: 3, end: 5, value: null, after: [[0, 3, 'a'], [5, 10, 'a']] },
    { name: 'clear all', before: [[0, 2, 'a'], [4, 6, 'b']], start: 0, end: 10, value: null, after: [] },
    { name: 'clear a hole', before: [[0, 2, 'a'], [4, 6, 'b']], start: 2, end: 4, value: null, after: [[0, 2, 'a'], [4, 6, 'b']] },
    { name: 'clear edges', before: [[0, 4, 'a'], [4, 8, 'b']], start: 3, end: 5, value: null, after: [[0, 3, 'a'], [5, 8, 'b']] },
    { name: 'write before all', before: [[5, 6, 'a']], start: 0, end: 1, value: 'b', after: [[0, 1, 'b'], [5, 6, 'a']] },
    { name: 'write after all', before: [[0, 1, 'a']], start: 5, end: 6, value: 'b', after: [[0, 1, 'a'], [5, 6, 'b']] },
  ];
  it.each(cases)('$name', ({ before, start, end, value, after }) => {
    expect(plain(overlay(runs(before), start, end, value, same))).toEqual(after);
  });
});

describe('resize, gaps, tagged ranges', () => {
  it.each([
    { before: [[0, 4, 'a'], [6, 9, 'b']] as R[], end: 7, after: [[0, 4, 'a'], [6, 7, 'b']] as R[] },
    { before: [[0, 4, 'a'], [6, 9, 'b']] as R[], end: 6, after: [[0, 4, 'a']] as R[] },
    { before: [[0, 4, 'a']] as R[], end: 0, after: [] as R[] },
    { before: [[0, 4, 'a']] as R[], end: 10, after: [[0, 4, 'a']] as R[] },
  ])('shrink to $end pages', ({ before, end, after }) => {
    expect(plain(truncateRuns(runs(before), end))).toEqual(after);
  });

  it('gaps are the unallocated stretches of a window', () => {
    expect(gaps(runs([[2, 4, 'a'], [6, 7, 'b']]), 0, 10)).toEqual([{ start: 0, end: 2 }, { start: 4, end: 6 }, { start: 7, end: 10 }]);
    expect(gaps(runs([[0, 10, 'a']]), 2, 5)).toEqual([]);
  });

  it('tagged ranges merge adjacent runs of one tag and use inclusive byte ends', () => {
    const rs = runs([[0, 1, 'x1'], [1, 3, 'y1'], [3, 4, 'z2'], [6, 7, 'w2']]);
    expect(toTaggedRanges(rs, (v) => Number(v[1]))).toEqual([
      { start: 0, end: 1535, tag: 1 }, { start: 1536, end: 2047, tag: 2 }, { start: 3072, end: 3583, tag: 2 },
    ]);
  });
});

describe('diff (Get Page Ranges with prevsnapshot)', () => {
  const version = (v: string): number => Number(v.slice(1));
  it.each([
    { name: 'identical', prev: [[0, 4, 'v1']] as R[], target: [[0, 4, 'v1']] as R[], updated: [], cleared: [] },
    { name: 'rewritten middle', prev: [[0, 4, 'v1']] as R[], target: [[0, 1, 'v1'], [1, 3, 'v2'], [3, 4, 'v1']] as R[],
      updated: [{ start: 512, end: 1535 }], cleared: [] },
    { name: 'new pages', prev: [] as R[], target: [[2, 3, 'v2']] as R[], updated: [{ start: 1024, end: 1535 }], cleared: [] },
    { name: 'cleared pages', prev: [[0, 4, 'v1']] as R[], target: [[0, 2, 'v1']] as R[], updated: [],
      cleared: [{ start: 1024, end: 2047 }] },
    { name: 'both, merged', prev: [[0, 2, 'v1'], [2, 4, 'v2']] as R[], target: [[0, 2, 'v3'], [2, 3, 'v4']] as R[],
      updated: [{ start: 0, end: 1535 }], cleared: [{ start: 1536, end: 2047 }] },
  ])('$name', ({ prev, target, updated, cleared }) => {
    expect(diffRuns(runs(target), runs(prev), 0, 100, version)).toEqual({ updated, cleared });
  });

  it('limits to a window', () => {
    expect(diffRuns(runs([[0, 10, 'v2']]), [], 2, 4, (v) => Number(v.slice(1)))).toEqual({
      updated: [{ start: 1024, end: 2047 }], cleared: [],
    });
  });
});
