/** Semantics shared by every PageStore implementation: conditions, sequence numbers, snapshot ids. */
import { StoreError } from './errors.js';
import { clip, type Run } from './ranges.js';
import { type BlobRef, MAX_SEQUENCE_NUMBER, PAGE_SIZE, type SequenceNumberAction, type WriteConditions } from './types.js';

/** A stable map key for a blob name. */
export function blobKey(ref: BlobRef): string {
  return JSON.stringify([ref.account, ref.container, ref.blob]);
}

export function describeRef(ref: BlobRef & { snapshot?: string }): string {
  const base = `${ref.account}/${ref.container}/${ref.blob}`;
  return ref.snapshot === undefined ? base : `${base}?snapshot=${ref.snapshot}`;
}

/** `416 InvalidPageRange` unless bytes `[offset, offset + length)` lie inside a blob of `size` bytes. */
export function checkInside(ref: BlobRef, offset: number, length: number, size: number): void {
  if (offset + length > size) {
    throw new StoreError('InvalidPageRange',
      `bytes ${offset}..${offset + length - 1} pass the end of ${describeRef(ref)} (${size} bytes)`);
  }
}

/**
 * Check `conditions` against the blob's sequence number and the stamps of pages `[start, end)`.
 * Throws a 412 StoreError when one fails.
 */
export function checkConditions(
  conditions: WriteConditions, sequenceNumber: number, runsInWindow: readonly Run<{ version: number }>[],
  start: number, end: number,
): void {
  const { ifSequenceNumberLessThanOrEqual: le, ifSequenceNumberLessThan: lt, ifSequenceNumberEqual: eq } = conditions;
  if ((le !== undefined && !(sequenceNumber <= le)) || (lt !== undefined && !(sequenceNumber < lt))
    || (eq !== undefined && sequenceNumber !== eq)) {
    throw new StoreError('SequenceNumberConditionNotMet',
      `the sequence number condition was not met (sequence number is ${sequenceNumber})`);
  }
  const since = conditions.ifPagesUnchangedSince;
  if (since === undefined) return;
  let at = start;
  for (const r of clip(runsInWindow, start, end)) {
    if (r.start !== at || r.value.version > since) break;
    at = r.end;
  }
  if (at !== end) {
    throw new StoreError('ConditionNotMet',
      `page ${at} (byte ${at * PAGE_SIZE}) was written or cleared after version ${since}`);
  }
}

/** The sequence number after `x-ms-sequence-number-action`. */
export function nextSequenceNumber(current: number, action: SequenceNumberAction, value: number | undefined): number {
  switch (action) {
    case 'max': return Math.max(current, value ?? 0);
    case 'update': return value ?? 0;
    case 'increment':
      if (current >= MAX_SEQUENCE_NUMBER) {
        throw new StoreError('SequenceNumberConditionNotMet', `the sequence number ${current} cannot be incremented`);
      }
      return current + 1;
  }
}

/**
 * A new snapshot id in Azure's format (`2024-05-01T10:20:30.1234567Z`, 7 fractional digits), strictly greater
 * than `last` so ids sort in creation order.
 */
export function newSnapshotId(last: string | undefined, now: Date = new Date()): string {
  let id = `${now.toISOString().slice(0, 23)}0000Z`;
  if (last !== undefined && id <= last) {
    const fraction = Number(last.slice(20, 27)) + 1;
    if (fraction < 1e7) id = `${last.slice(0, 20)}${String(fraction).padStart(7, '0')}Z`;
    else id = newSnapshotId(last, new Date(Date.parse(`${last.slice(0, 19)}Z`) + 1000));
  }
  return id;
}

