/**
 * Faults: Azurite stopped or killed in the middle of an upload, restarted on the same location and port; a
 * new store (another process) resumes the upload from the checkpoint in the state blob. The result is exact
 * and the chunks that had finished are not sent again.
 *
 * Azurite acknowledges writes before it saves its metadata (LokiJS autosave every 5 s), so a SIGKILL loses the
 * last seconds of acknowledged requests, on the state blob and the page blob alike (a consistent earlier point
 * in time). The SIGTERM case checks the strict property (everything acknowledged is skipped); the SIGKILL case
 * checks exactness and that whatever the server kept is skipped.
 */
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { StoreError, type BlobRef } from '../../lib/store/index.js';
import type { UploadExtent } from '../../lib/remote/index.js';
import { type AzuriteServer, startAzurite } from './azurite.js';
import { azureStore, plainClient } from './helpers.js';

const MiB = 1024 * 1024;
let server: AzuriteServer;
beforeAll(async () => { server = await startAzurite(['acct']); });
afterAll(async () => { await server.stop(); });

/** `total` bytes of `data` as 1 MiB extents, each after `delayMs`; `onYield(i)` before extent i. */
async function* slowly(data: Buffer, delayMs: number, onYield: (i: number) => Promise<void> = async () => {}): AsyncGenerator<UploadExtent> {
  for (let i = 0; i * MiB < data.length; i++) {
    await onYield(i);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    yield { offset: i * MiB, data: data.subarray(i * MiB, (i + 1) * MiB), tag: 3 };
  }
}

async function interrupted(name: string, stop: () => Promise<void>, stopAfterMs: number, total: number, delayMs: number) {
  const ref: BlobRef = { account: 'acct', container: 'faults', blob: name };
  const data = randomBytes(total);
  const first = azureStore(server);
  await first.createContainer('acct', 'faults').catch(() => undefined);
  await first.createBlob(ref, total);
  let acked = 0;
  const started = Date.now();
  let stopped: Promise<void> | undefined;
  const failure = await first.uploadExtents(ref, slowly(data, delayMs, async () => {
    if (stopped === undefined && Date.now() - started >= stopAfterMs) stopped = stop();
    if (stopped !== undefined) await stopped;
  }), { concurrency: 2, batchBytes: 4 * MiB, onProgress: (p) => { acked = p.bytesSent; } }).then(() => undefined, (err: unknown) => err);
  expect(failure).toBeInstanceOf(StoreError);
  expect(acked).toBeGreaterThan(0);
  expect(acked).toBeLessThan(total);
  await first.close();
  await server.restart();

  const second = azureStore(server);
  try {
    const result = await second.uploadExtents(ref, slowly(data, 0), { concurrency: 4, resume: true });
    expect(result.bytesSent + result.bytesResumed).toBe(total);
    expect(result.bytesResumed).toBeGreaterThan(0);
    const raw = await plainClient(server, 'acct').getContainerClient('faults').getPageBlobClient(name).downloadToBuffer(0, total);
    expect(raw.equals(data)).toBe(true);
    expect(Buffer.from((await second.readPages(ref, 0, total)).data).equals(data)).toBe(true);
    expect(await second.listRanges(ref)).toEqual([{ start: 0, end: total - 1, tag: 3 }]);
    return { acked, result };
  } finally {
    await second.close();
  }
}

describe('upload interrupted by the server going away', () => {
  it('stopped (SIGTERM) mid-upload: resume sends exactly what was not acknowledged', async () => {
    const { acked, result } = await interrupted('stopped.vhd', () => server.terminate(), 600, 32 * MiB, 40);
    expect(result.bytesResumed).toBeGreaterThanOrEqual(acked);
  });

  it('killed (SIGKILL) mid-upload: resume is exact and skips what the server kept', async () => {
    // Past Azurite's 5 s metadata autosave, so the checkpoint it kept is not empty.
    await interrupted('killed.vhd', () => server.kill(), 6000, 64 * MiB, 120);
  });
});
