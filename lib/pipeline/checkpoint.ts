/**
 * The resume checkpoint of an import, kept in the target blob's metadata while the import runs:
 *
 *   vdcrypt_import_source = JSON identity of the source (path, size, mtime, footer and chain unique ids) and of
 *                           the import's shape (mode, virtual size, blob size, footer or not)
 *   vdcrypt_import_done   = byte offset up to which every extent has been durably written
 *
 * A resumed import compares the identity field by field and refuses a mismatch, then skips every extent
 * below `done`. The names use underscores, not hyphens: Azure metadata names must be C# identifiers.
 * Both entries are removed once the footer page is written, which marks the import complete.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';

import type { Metadata } from '../store/index.js';
import type { DiskImage } from '../vhd/index.js';
import { PipelineError } from './errors.js';

export const CHECKPOINT_SOURCE_KEY = 'vdcrypt_import_source';
export const CHECKPOINT_DONE_KEY = 'vdcrypt_import_done';

export interface ImportIdentity {
  path: string;
  fileSize: number;
  /** Modification time in nanoseconds, as a decimal string (exact, unlike a float of milliseconds). */
  mtimeNs: string;
  format: string;
  /** Unique ids of the footer (and each parent of a differencing chain), hex; empty for raw images. */
  uniqueIds: string[];
  mode: 'base-image' | 'archive';
  virtualSize: number;
  blobSize: number;
  footer: boolean;
}

export async function sourceIdentity(image: DiskImage,
  shape: Pick<ImportIdentity, 'mode' | 'virtualSize' | 'blobSize' | 'footer'>): Promise<ImportIdentity> {
  const path = resolve(image.path);
  const st = await stat(path, { bigint: true });
  return {
    path,
    fileSize: Number(st.size),
    mtimeNs: st.mtimeNs.toString(),
    format: image.format,
    uniqueIds: image.chain.map((m) => Buffer.from(m.uniqueId).toString('hex')),
    ...shape,
  };
}

export function checkpointMetadata(identity: ImportIdentity, done: number, base: Metadata = {}): Metadata {
  return { ...base, [CHECKPOINT_SOURCE_KEY]: JSON.stringify(identity), [CHECKPOINT_DONE_KEY]: String(done) };
}

export function withoutCheckpoint(metadata: Metadata): Metadata {
  const rest: Metadata = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (k !== CHECKPOINT_SOURCE_KEY && k !== CHECKPOINT_DONE_KEY) rest[k] = v;
  }
  return rest;
}

/**
 * The offset to resume from, after checking that `metadata` holds a checkpoint of the same import.
 * `blob` names the target in messages.
 */
export function resumeOffset(metadata: Metadata, identity: ImportIdentity, blob: string): number {
  const stored = metadata[CHECKPOINT_SOURCE_KEY];
  const doneText = metadata[CHECKPOINT_DONE_KEY];
  if (stored === undefined || doneText === undefined) {
    throw new PipelineError('NoImportToResume',
      `blob ${blob} holds no import checkpoint (a finished import or another blob); import it without resume, with overwrite`);
  }
  let previous: Partial<ImportIdentity>;
  try {
    previous = JSON.parse(stored) as Partial<ImportIdentity>;
  } catch (cause) {
    throw new PipelineError('ImportSourceChanged', `blob ${blob} has an unreadable import checkpoint`, { cause });
  }
  for (const key of Object.keys(identity) as Array<keyof ImportIdentity>) {
    const was = JSON.stringify(previous[key]);
    const now = JSON.stringify(identity[key]);
    if (was !== now) {
      throw new PipelineError('ImportSourceChanged',
        `blob ${blob} was being imported with ${key} = ${was ?? 'nothing'}, this import has ${now}; ` +
        'resume only the same, unchanged image with the same options');
    }
  }
  const done = Number(doneText);
  if (!Number.isSafeInteger(done) || done < 0 || done > identity.virtualSize) {
    throw new PipelineError('ImportSourceChanged', `blob ${blob} has an invalid import checkpoint offset ${JSON.stringify(doneText)}`);
  }
  return done;
}
