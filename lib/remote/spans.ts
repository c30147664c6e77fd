/** Page-span arithmetic between Azure's inclusive byte ranges and the store's half-open page runs. */
import type { PageBlobClient } from '@azure/storage-blob';

import { PAGE_SIZE, type PageRange } from '../store/index.js';
import type { Run } from '../store/ranges.js';
import type { PageSpan } from './state.js';

/** The pages of `[start, end)` that Azure reports allocated in `client`, from one Get Page Ranges. */
export async function allocatedSpans(client: PageBlobClient, start: number, end: number): Promise<PageSpan[]> {
  return spansOfAzure((await client.getPageRanges(start * PAGE_SIZE, (end - start) * PAGE_SIZE)).pageRange ?? []);
}

/** Azure `PageRange{start,end}` lists (inclusive byte ends, maybe unmerged, as Azurite sends) → sorted merged page spans. */
export function spansOfAzure(ranges: readonly { start?: number; end?: number; offset?: number; count?: number }[]): PageSpan[] {
  const raw = ranges.map((r) => {
    const start = r.start ?? r.offset ?? 0;
    const end = r.end ?? start + (r.count ?? 0) - 1;
    return { start: Math.floor(start / PAGE_SIZE), end: Math.floor(end / PAGE_SIZE) + 1 };
  }).sort((a, b) => a.start - b.start);
  return mergeSpans(raw);
}

export function mergeSpans(sorted: readonly PageSpan[]): PageSpan[] {
  const out: PageSpan[] = [];
  for (const s of sorted) {
    if (s.end <= s.start) continue;
    const last = out[out.length - 1];
    if (last !== undefined && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else out.push({ start: s.start, end: s.end });
  }
  return out;
}

export function spansOfRuns<V>(runs: readonly Run<V>[]): PageSpan[] {
  return mergeSpans(runs.map((r) => ({ start: r.start, end: r.end })));
}

/** Pages in both lists (each sorted and merged). */
export function intersectSpans(a: readonly PageSpan[], b: readonly PageSpan[]): PageSpan[] {
  const out: PageSpan[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as PageSpan;
    const y = b[j] as PageSpan;
    const start = Math.max(x.start, y.start);
    const end = Math.min(x.end, y.end);
    if (end > start) out.push({ start, end });
    if (x.end < y.end) i++;
    else j++;
  }
  return out;
}

/** Pages of `a` not in `b`. */
export function subtractSpans(a: readonly PageSpan[], b: readonly PageSpan[]): PageSpan[] {
  const out: PageSpan[] = [];
  let j = 0;
  for (const x of a) {
    let at = x.start;
    while (j < b.length && (b[j] as PageSpan).end <= at) j++;
    for (let k = j; k < b.length && (b[k] as PageSpan).start < x.end; k++) {
      const y = b[k] as PageSpan;
      if (y.start > at) out.push({ start: at, end: y.start });
      at = Math.max(at, y.end);
    }
    if (at < x.end) out.push({ start: at, end: x.end });
  }
  return out;
}

export function clipSpans(spans: readonly PageSpan[], start: number, end: number): PageSpan[] {
  return intersectSpans(spans, [{ start, end }]);
}

export function toPageRanges(spans: readonly PageSpan[]): PageRange[] {
  return spans.map((s) => ({ start: s.start * PAGE_SIZE, end: s.end * PAGE_SIZE - 1 }));
}
