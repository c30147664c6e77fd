/** Argument checks shared by every PageStore implementation: TypeError for types, RangeError for values. */
import { describeValue } from '../errors.js';
import {
  type BlobOrSnapshotRef, type BlobRef, DEFAULT_FILL_BATCH_BYTES, type FillExtent, type FillOptions, MAX_BLOB_SIZE, MAX_READ_BYTES, MAX_SEQUENCE_NUMBER, MAX_TAG,
  MAX_WRITE_BYTES, type Metadata, PAGE_SIZE, type PageRange, type SequenceNumberAction, type WriteConditions,
} from './types.js';

/** Longest account, container or blob name we accept (Azure: blob names up to 1024 characters). */
export const MAX_NAME_LENGTH = 1024;

export function checkName(what: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string, got ${describeValue(value)}`);
  if (value.length === 0 || value.length > MAX_NAME_LENGTH) {
    throw new RangeError(`${what} must be 1..${MAX_NAME_LENGTH} characters, got ${value.length}`);
  }
  return value;
}

export function checkBlobRef(ref: unknown): BlobRef {
  if (typeof ref !== 'object' || ref === null) throw new TypeError(`ref must be an object, got ${describeValue(ref)}`);
  const r = ref as Partial<BlobRef>;
  checkName('account', r.account);
  checkName('container', r.container);
  checkName('blob', r.blob);
  return r as BlobRef;
}

export function checkAnyRef(ref: unknown): BlobOrSnapshotRef {
  const r = checkBlobRef(ref) as BlobOrSnapshotRef & { snapshot?: unknown };
  if (r.snapshot !== undefined) checkName('snapshot', r.snapshot);
  return r;
}

/** A non-negative safe integer. */
export function checkInteger(what: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number, got ${describeValue(value)}`);
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${what} must be an integer in 0..${max}, got ${value}`);
  }
  return value;
}

export function checkAligned(what: string, value: unknown, max: number): number {
  const n = checkInteger(what, value, max);
  if (n % PAGE_SIZE !== 0) throw new RangeError(`${what} must be a multiple of ${PAGE_SIZE}, got ${n}`);
  return n;
}

export function checkBlobSize(size: unknown): number {
  return checkAligned('size', size, MAX_BLOB_SIZE);
}

export function checkTag(tag: unknown): number {
  return checkInteger('tag', tag, MAX_TAG);
}

export function checkWriteData(data: unknown): Uint8Array {
  if (!(data instanceof Uint8Array)) throw new TypeError(`data must be a Uint8Array or Buffer, got ${describeValue(data)}`);
  if (data.length === 0 || data.length > MAX_WRITE_BYTES || data.length % PAGE_SIZE !== 0) {
    throw new RangeError(`data must be a positive multiple of ${PAGE_SIZE} bytes up to ${MAX_WRITE_BYTES}, got ${data.length}`);
  }
  return data;
}

export function checkClearLength(length: unknown): number {
  const n = checkAligned('length', length, MAX_BLOB_SIZE);
  if (n === 0) throw new RangeError('length must be positive');
  return n;
}

export function checkReadWindow(offset: unknown, length: unknown): void {
  checkInteger('offset', offset, MAX_BLOB_SIZE);
  checkInteger('length', length, MAX_READ_BYTES);
}

export function checkWindow(window: unknown): PageRange | undefined {
  if (window === undefined) return undefined;
  if (typeof window !== 'object' || window === null) {
    throw new TypeError(`window must be a PageRange, got ${describeValue(window)}`);
  }
  const w = window as Partial<PageRange>;
  const start = checkInteger('window.start', w.start, MAX_BLOB_SIZE);
  const end = checkInteger('window.end', w.end, MAX_BLOB_SIZE);
  if (end < start) throw new RangeError(`window.end must be >= window.start, got ${start}..${end}`);
  return { start, end };
}

export function checkMetadata(metadata: unknown): Metadata {
  if (metadata === undefined) return {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new TypeError(`metadata must be an object of strings, got ${describeValue(metadata)}`);
  }
  const out: Metadata = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new TypeError(`metadata['${k}'] must be a string, got ${describeValue(v)}`);
    out[k] = v;
  }
  return out;
}

export function checkSequenceAction(action: unknown, value: unknown): { action: SequenceNumberAction; value?: number } {
  if (action !== 'max' && action !== 'update' && action !== 'increment') {
    throw new RangeError(`action must be 'max', 'update' or 'increment', got ${String(action)}`);
  }
  if (action === 'increment') {
    if (value !== undefined) throw new RangeError(`'increment' takes no value, got ${String(value)}`);
    return { action };
  }
  return { action, value: checkInteger('sequence number', value, MAX_SEQUENCE_NUMBER) };
}

export function checkConditions(conditions: unknown): WriteConditions {
  if (conditions === undefined) return {};
  if (typeof conditions !== 'object' || conditions === null) {
    throw new TypeError(`conditions must be an object, got ${describeValue(conditions)}`);
  }
  const c = conditions as WriteConditions;
  for (const key of ['ifSequenceNumberLessThanOrEqual', 'ifSequenceNumberLessThan', 'ifSequenceNumberEqual',
    'ifPagesUnchangedSince'] as const) {
    if (c[key] !== undefined) checkInteger(key, c[key]);
  }
  return c;
}

/** Fill options with their defaults; TypeError / RangeError for bad ones. */
export function checkFillOptions(options: unknown): FillOptions & { batchBytes: number } {
  if (options === undefined) return { batchBytes: DEFAULT_FILL_BATCH_BYTES };
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${describeValue(options)}`);
  }
  const o = options as FillOptions;
  const batchBytes = o.batchBytes ?? DEFAULT_FILL_BATCH_BYTES;
  checkInteger('batchBytes', batchBytes, MAX_BLOB_SIZE);
  if (batchBytes === 0) throw new RangeError('batchBytes must be positive');
  if (o.onBatch !== undefined && typeof o.onBatch !== 'function') {
    throw new TypeError(`onBatch must be a function, got ${describeValue(o.onBatch)}`);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new TypeError(`signal must be an AbortSignal, got ${describeValue(o.signal)}`);
  }
  return { ...o, batchBytes };
}

export function checkExtentStream(extents: unknown): AsyncIterable<FillExtent> {
  if (typeof extents !== 'object' || extents === null || typeof (extents as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') {
    throw new TypeError(`extents must be an async iterable, got ${describeValue(extents)}`);
  }
  return extents as AsyncIterable<FillExtent>;
}

/** One extent of a fill: a writePages call's arguments, starting at or after `previousEnd` (ascending, no overlap). */
/** `fn` callable any number of times, running once; a throw of the producer's callback is not the store's concern. */
function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    try {
      fn();
    } catch {
      // The producer's bookkeeping failed; the store's write stands.
    }
  };
}

export function checkFillExtent(extent: unknown, previousEnd: number): FillExtent {
  if (typeof extent !== 'object' || extent === null) throw new TypeError(`an extent must be an object, got ${describeValue(extent)}`);
  const e = extent as Partial<FillExtent>;
  const offset = checkAligned('extent offset', e.offset, MAX_BLOB_SIZE);
  if (offset < previousEnd) {
    throw new RangeError(`extents must ascend without overlap: offset ${offset} is below the previous end ${previousEnd}`);
  }
  if (e.release !== undefined && typeof e.release !== 'function') {
    throw new TypeError(`an extent's release must be a function, got ${describeValue(e.release)}`);
  }
  const checked: FillExtent = { offset, data: checkWriteData(e.data), tag: checkTag(e.tag) };
  if (e.release !== undefined) checked.release = once(e.release);
  return checked;
}
