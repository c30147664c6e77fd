/**
 * Page-run algebra: a blob's allocated pages as a sorted list of non-overlapping runs of pages that share a
 * value (the caller's tag, the write version that produced the bytes, and for snapshots where the bytes live).
 * Pure functions; both stores keep their maps in this shape (MemoryPageStore in arrays, LocalPageStore in
 * SQLite rows) and call {@link overlay} for every write, clear and shrink.
 *
 * Runs count pages, half-open: `{ start: 4, end: 6 }` is pages 4 and 5, i.e. Azure's byte range
 * `{ start: 2048, end: 3071 }`. Conversion to Azure's inclusive byte ranges happens only at the edges.
 *
 *   runs before         [0 ---- a:tag0 ---- 8)      [10 -- b:tag1 -- 14)
 *   overlay 6..12 = c                  [6 --- c --- 12)
 *   runs after          [0 - a - 6)[6 --- c --- 12)[12 b 14)
 *   overlay 6..12 = null
 *   runs after          [0 - a - 6)                [12 b 14)       (null clears: the pages become unallocated)
 *
 * Adjacent runs with equal values merge, so the list is canonical: two maps holding the same pages compare
 * equal run by run. Diff (Azure Get Page Ranges with `prevsnapshot`) sweeps two lists over their joint
 * boundaries:
 *
 *   previous  [== v1 ==][== v2 ==]          [= v3 =]
 *   target    [== v1 ==][== v5 ==][== v6 ==]
 *   updated              ^^^^^^^^^^^^^^^^^^^^            (allocated in target, version differs)
 *   cleared                                  ^^^^^^^^     (allocated before, unallocated now)
 */
import { PAGE_SIZE, type PageRange, type TaggedRange } from './types.js';

export interface Run<V> {
  /** First page. */
  start: number;
  /** One past the last page. */
  end: number;
  value: V;
}

/** What a stored page carries: the caller's tag and the blob version of the write that produced its bytes. */
export interface PageStamp {
  tag: number;
  version: number;
}

export type Same<V> = (a: V, b: V) => boolean;

export const sameStamp: Same<PageStamp> = (a, b) => a.tag === b.tag && a.version === b.version;

/** Pages `[first, end)` covering bytes `[offset, offset + length)`. */
export function pageWindow(offset: number, length: number): { start: number; end: number } {
  return { start: Math.floor(offset / PAGE_SIZE), end: Math.ceil((offset + length) / PAGE_SIZE) };
}

/** Pages covering an inclusive byte window. */
export function pagesOfRange(range: PageRange): { start: number; end: number } {
  return pageWindow(range.start, range.end - range.start + 1);
}

/** Index of the first run with `end > page` (binary search). */
export function firstRunEndingAfter<V>(runs: readonly Run<V>[], page: number): number {
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((runs[mid] as Run<V>).end > page) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The parts of `runs` inside pages `[start, end)`. */
export function clip<V>(runs: readonly Run<V>[], start: number, end: number): Run<V>[] {
  const out: Run<V>[] = [];
  for (let i = firstRunEndingAfter(runs, start); i < runs.length; i++) {
    const r = runs[i] as Run<V>;
    if (r.start >= end) break;
    out.push({ start: Math.max(r.start, start), end: Math.min(r.end, end), value: r.value });
  }
  return out;
}

/** Append a run, merging it into the last one when adjacent and equal. */
export function pushRun<V>(out: Run<V>[], run: Run<V>, same: Same<V>): void {
  if (run.end <= run.start) return;
  const last = out[out.length - 1];
  if (last !== undefined && last.end === run.start && same(last.value, run.value)) last.end = run.end;
  else out.push({ ...run });
}

/**
 * Set pages `[start, end)` to `value` (or unallocate them for `null`) in a canonical run list; returns the new
 * list. `runs` may be a slice of a bigger list: pass the runs overlapping or adjacent to `[start, end)` and
 * replace exactly those with the result.
 */
export function overlay<V>(runs: readonly Run<V>[], start: number, end: number, value: V | null, same: Same<V>): Run<V>[] {
  const out: Run<V>[] = [];
  let placed = value === null;
  for (const r of runs) {
    if (r.end <= start) {
      pushRun(out, r, same);
      continue;
    }
    if (r.start < start) pushRun(out, { start: r.start, end: start, value: r.value }, same);
    if (!placed && r.start >= start) {
      pushRun(out, { start, end, value: value as V }, same);
      placed = true;
    }
    if (r.start >= end) {
      pushRun(out, r, same);
      continue;
    }
    if (!placed) {
      pushRun(out, { start, end, value: value as V }, same);
      placed = true;
    }
    if (r.end > end) pushRun(out, { start: end, end: r.end, value: r.value }, same);
  }
  if (!placed) pushRun(out, { start, end, value: value as V }, same);
  return out;
}

/** Drop every page at or past `end` (a shrink). */
export function truncateRuns<V>(runs: readonly Run<V>[], end: number): Run<V>[] {
  return clip(runs, 0, end);
}

/** Inclusive byte range of pages `[start, end)`. */
export function toPageRange(start: number, end: number): PageRange {
  return { start: start * PAGE_SIZE, end: end * PAGE_SIZE - 1 };
}

/** Azure-style tagged ranges: runs merged by tag, inclusive byte ends. `tail` continues a previous batch. */
export function toTaggedRanges<V>(runs: Iterable<Run<V>>, tagOf: (v: V) => number): TaggedRange[] {
  const out: TaggedRange[] = [];
  for (const r of runs) appendTagged(out, r.start, r.end, tagOf(r.value));
  return out;
}

export function appendTagged(out: TaggedRange[], start: number, end: number, tag: number): void {
  const last = out[out.length - 1];
  if (last !== undefined && last.end + 1 === start * PAGE_SIZE && last.tag === tag) {
    last.end = end * PAGE_SIZE - 1;
  } else {
    out.push({ ...toPageRange(start, end), tag });
  }
}

export function appendRange(out: PageRange[], start: number, end: number): void {
  if (end <= start) return;
  const last = out[out.length - 1];
  if (last !== undefined && last.end + 1 === start * PAGE_SIZE) last.end = end * PAGE_SIZE - 1;
  else out.push(toPageRange(start, end));
}

/**
 * Azure Get Page Ranges diff between `previous` and `target` over pages `[start, end)`: `updated` are pages
 * allocated in the target with a different write version than in the previous map (or absent there),
 * `cleared` are pages allocated before and unallocated now.
 */
export function diffRuns<V>(
  target: readonly Run<V>[], previous: readonly Run<V>[], start: number, end: number, versionOf: (v: V) => number,
): { updated: PageRange[]; cleared: PageRange[] } {
  const a = clip(target, start, end);
  const b = clip(previous, start, end);
  const cuts = new Set<number>([start, end]);
  for (const r of a) { cuts.add(r.start); cuts.add(r.end); }
  for (const r of b) { cuts.add(r.start); cuts.add(r.end); }
  const points = [...cuts].sort((x, y) => x - y);
  const updated: PageRange[] = [];
  const cleared: PageRange[] = [];
  let ia = 0;
  let ib = 0;
  for (let k = 0; k + 1 < points.length; k++) {
    const s = points[k] as number;
    const e = points[k + 1] as number;
    while (ia < a.length && (a[ia] as Run<V>).end <= s) ia++;
    while (ib < b.length && (b[ib] as Run<V>).end <= s) ib++;
    const ra = ia < a.length && (a[ia] as Run<V>).start <= s ? a[ia] : undefined;
    const rb = ib < b.length && (b[ib] as Run<V>).start <= s ? b[ib] : undefined;
    if (ra !== undefined && (rb === undefined || versionOf(ra.value) !== versionOf(rb.value))) appendRange(updated, s, e);
    else if (ra === undefined && rb !== undefined) appendRange(cleared, s, e);
  }
  return { updated, cleared };
}

/** Total pages in a run list. */
export function countPages<V>(runs: readonly Run<V>[]): number {
  let n = 0;
  for (const r of runs) n += r.end - r.start;
  return n;
}

/** The gaps of `runs` inside pages `[start, end)`: the unallocated stretches. */
export function gaps<V>(runs: readonly Run<V>[], start: number, end: number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let at = start;
  for (const r of clip(runs, start, end)) {
    if (r.start > at) out.push({ start: at, end: r.start });
    at = r.end;
  }
  if (at < end) out.push({ start: at, end });
  return out;
}
