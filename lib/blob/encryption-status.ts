/**
 * The encryption report of a blob or snapshot: per-range state and AEK generation, byte counts, and Azure's
 * `x-ms-server-encrypted` (true only when every allocated page is encrypted). Azure reports only the flag;
 * the per-range state is vdcrypt's own.
 */
import type { BlobOrSnapshotRef, TaggedRange } from '../store/index.js';
import { type EncryptionRange, type EncryptionStatus, PLAINTEXT_TAG } from './types.js';

export function blobName(ref: BlobOrSnapshotRef): string {
  const base = `${ref.account}/${ref.container}/${ref.blob}`;
  return 'snapshot' in ref && typeof ref.snapshot === 'string' ? `${base}@${ref.snapshot}` : base;
}

export function toEncryptionRange(r: TaggedRange): EncryptionRange {
  return r.tag === PLAINTEXT_TAG
    ? { start: r.start, end: r.end, state: 'plaintext', generation: null }
    : { start: r.start, end: r.end, state: 'encrypted', generation: r.tag };
}

export async function encryptionStatus(ref: BlobOrSnapshotRef, size: number, ranges: AsyncIterable<TaggedRange>):
  Promise<EncryptionStatus> {
  let encryptedBytes = 0;
  let plaintextBytes = 0;
  const out: EncryptionRange[] = [];
  for await (const r of ranges) {
    const bytes = r.end - r.start + 1;
    if (r.tag === PLAINTEXT_TAG) plaintextBytes += bytes;
    else encryptedBytes += bytes;
    out.push(toEncryptionRange(r));
  }
  const allocatedBytes = encryptedBytes + plaintextBytes;
  return {
    blob: blobName(ref),
    size,
    serverEncrypted: plaintextBytes === 0,
    allocatedBytes,
    encryptedBytes,
    plaintextBytes,
    unallocatedBytes: size - allocatedBytes,
    ranges: out,
  };
}
