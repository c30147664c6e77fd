/**
 * `vdcrypt import` into an account on the azure backend: the same blob as lib/pipeline's importImage (a fixed
 * VHD of V + 512 bytes with the image's footer rewritten as fixed in the last page, or a raw disk; the same
 * `--azure` size rule; base-image pages plaintext, archive pages following the account's encryption), sent
 * through the Azure backend's bulk path instead of one Put Page call at a time:
 *
 *   image.extents() ──▶ sealExtents (SSE decision + XTS, zero pages dropped) ──▶ uploadExtents
 *     ...footer last                                         (batched intents, parallel 4 MiB Put Page, CRC64)
 *
 * Resume: the blob's metadata carries lib/pipeline's import identity while the import runs (a resume of
 * another source is refused, as in the generic pipeline), and the upload's own checkpoint in the state blob
 * says which chunks landed, so `--resume` sends only the rest. Ctrl-C stops the source between extents; the
 * chunks in flight land and are recorded before the command exits.
 */
import { blobName, type PageBlobService, type WriteMode } from '../blob/index.js';
import {
  checkpointMetadata, type ImportMode, type ImportResult, PipelineError, planImport, resumeOffset, sourceIdentity,
  withoutCheckpoint,
} from '../pipeline/index.js';
import type { AzurePageStore, UploadProgress } from '../remote/index.js';
import { sealExtents } from '../remote/index.js';
import { type BlobRef, type Metadata, StoreError } from '../store/index.js';
import { type AzureSizeMode, FOOTER_SIZE, MAX_CHUNK_SIZE, openImage } from '../vhd/index.js';

const MS_PER_S = 1000;

export interface AzureImportOptions {
  baseImage: boolean;
  azure: AzureSizeMode | undefined;
  resume: boolean;
  overwrite: boolean;
  signal: AbortSignal;
  onProgress: (p: { bytesDone: number; bytesSkipped: number; bytesTotal: number }) => void;
}

/** What the command prints: importImage's result, plus what the bulk path measured. */
export interface AzureImportResult extends ImportResult {
  backend: 'azure';
  requests: number;
}

export async function importToAzure(blobs: PageBlobService, store: AzurePageStore, imagePath: string, ref: BlobRef,
  options: AzureImportOptions): Promise<AzureImportResult> {
  const started = Date.now();
  const mode: ImportMode = options.baseImage ? 'base-image' : 'archive';
  const writeMode: WriteMode = options.baseImage ? 'base-image' : 'account';
  const image = await openImage(imagePath);
  try {
    const plan = planImport(image, options.azure);
    const identity = await sourceIdentity(image, {
      mode, virtualSize: plan.virtualSize, blobSize: plan.blobSize, footer: plan.footer !== null,
    });
    let resume = false;
    let keep: Metadata = {};
    const existing = options.resume ? await blobs.getBlob(ref).catch((e: unknown) => {
      if (e instanceof StoreError && e.code === 'BlobNotFound') return null;
      throw e;
    }) : null;
    if (existing !== null) {
      resumeOffset(existing.metadata, identity, blobName(ref)); // refuses another source
      if (existing.size !== identity.blobSize) {
        throw new PipelineError('ImportSourceChanged', `blob ${blobName(ref)} is ${existing.size} bytes, the import it resumes makes ${identity.blobSize}`);
      }
      resume = true;
      keep = withoutCheckpoint(existing.metadata);
    } else {
      await blobs.createBlob(ref, plan.blobSize, { metadata: checkpointMetadata(identity, 0), overwrite: options.overwrite });
    }

    // The source tracks how far through the disk it has read, for the progress bar.
    let cursor = 0;
    let sent: UploadProgress = { bytesSent: 0, bytesSkipped: 0, bytesResumed: 0, requests: 0 };
    const report = (): void => options.onProgress({
      bytesDone: sent.bytesSent, bytesSkipped: Math.max(0, Math.min(cursor, plan.virtualSize) - sent.bytesSent), bytesTotal: plan.virtualSize,
    });
    const { signal } = options;
    async function* source(): AsyncGenerator<{ offset: number; data: Uint8Array }> {
      for await (const extent of image.extents({ chunkSize: MAX_CHUNK_SIZE })) {
        if (signal.aborted) throw new PipelineError('OperationAborted', 'the import was stopped', { cause: signal.reason });
        cursor = extent.offset + extent.data.length;
        yield { offset: extent.offset, data: extent.data };
      }
      if (signal.aborted) throw new PipelineError('OperationAborted', 'the import was stopped', { cause: signal.reason });
      cursor = plan.virtualSize;
      if (plan.footer !== null) yield { offset: plan.virtualSize, data: plan.footer };
    }
    const sealed = { bytesSkipped: 0 };
    const result = await store.uploadExtents(ref, sealExtents(blobs, ref.account, source(), { mode: writeMode, stats: sealed }), {
      resume,
      onProgress: (p) => {
        sent = p;
        report();
      },
    });
    sent = result;
    report();
    await blobs.store.setMetadata(ref, keep); // marks the import complete (no checkpoint left)

    const elapsedMs = Date.now() - started;
    const footerSent = plan.footer !== null && result.bytesSent > 0 ? FOOTER_SIZE : 0;
    const dataSent = result.bytesSent - footerSent;
    return {
      blob: blobName(ref), imageFormat: image.format, mode, virtualSize: plan.virtualSize, blobSize: plan.blobSize,
      footer: plan.footer !== null, bytesWritten: result.bytesSent,
      bytesSkipped: Math.max(0, plan.virtualSize - dataSent), bytesResumed: result.bytesResumed,
      elapsedMs, throughput: elapsedMs > 0 ? Math.round((result.bytesSent * MS_PER_S) / elapsedMs) : 0,
      backend: 'azure', requests: result.requests,
    };
  } finally {
    await image.close();
  }
}
