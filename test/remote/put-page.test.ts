/**
 * putPage (lib/remote/put-page.ts), the bulk upload's Put Page: it must send exactly the request the SDK's
 * `uploadPages` sends (bar the per-request id, date and signature), through the client's own pipeline, so the
 * SDK's retry policy and credential apply, and fail with the same RestError. A small HTTP server stands in for
 * Azure here, to record requests and to answer with scripted failures; the Azurite suites run the same code
 * against a real server (upload.ts sends every bulk Put Page through it).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

import { BlobServiceClient, type PageBlobClient, RestError } from '@azure/storage-blob';
import { afterEach, describe, expect, it } from 'vitest';

import { DEFAULT_RETRY } from '../../lib/remote/index.js';
import { AzureClients } from '../../lib/remote/clients.js';
import { isDefiniteRefusal, toStoreError } from '../../lib/remote/errors.js';
import { putPage, putPageFastPath } from '../../lib/remote/put-page.js';
import { StoreError } from '../../lib/store/index.js';

const KEY = Buffer.alloc(64, 7).toString('base64');
const RETRY = { maxTries: 3, retryDelayInMs: 5, maxRetryDelayInMs: 20, tryTimeoutInMs: 10_000 };
/** Headers that differ between any two requests (a fresh id, the clock, the signature over both). */
const PER_REQUEST = ['x-ms-client-request-id', 'x-ms-date', 'authorization'];

interface Seen {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

let server: Server | undefined;
afterEach(async () => {
  if (server !== undefined) await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A server recording every request and answering the n-th with `answers[n]` (the last one from then on). */
async function fakeAzure(answers: Answer[] = [{ status: 201 }]): Promise<{ seen: Seen[]; port: number }> {
  const seen: Seen[] = [];
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      const a = answers[Math.min(seen.length - 1, answers.length - 1)] as Answer;
      res.writeHead(a.status, { 'x-ms-request-id': `r${seen.length}`, ...a.headers });
      res.end(a.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { seen, port: (server.address() as { port: number }).port };
}

function blobAt(port: number): PageBlobClient {
  return BlobServiceClient.fromConnectionString(
    `DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=${KEY};BlobEndpoint=http://127.0.0.1:${port}/acct;`,
    { retryOptions: RETRY },
  ).getContainerClient('disks').getPageBlobClient('os.vhd');
}

function withoutPerRequest(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !PER_REQUEST.includes(name)));
}

const body = Buffer.from(Array.from({ length: 3 * 512 }, (_, i) => (i * 7) & 255));
const crc64 = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);

describe('putPage sends what uploadPages sends', () => {
  it('the same method, URL, headers and body, through the client\'s pipeline', async () => {
    const { seen, port } = await fakeAzure();
    const blob = blobAt(port);
    expect(putPageFastPath(blob)).toBe(true);
    await blob.uploadPages(body, 4096, body.length, { transactionalContentCrc64: crc64 });
    await putPage(blob, body, 4096, crc64.toString('base64'));
    expect(seen).toHaveLength(2);
    const [sdk, ours] = seen as [Seen, Seen];
    expect(ours.method).toBe('PUT');
    expect(ours.url).toBe(sdk.url);
    // The retry policy adds the server-side timeout of each try (tryTimeoutInMs) to both.
    expect(ours.url).toBe(`/acct/disks/os.vhd?comp=page&timeout=${RETRY.tryTimeoutInMs / 1000}`);
    expect(withoutPerRequest(ours.headers)).toEqual(withoutPerRequest(sdk.headers));
    expect(ours.headers['x-ms-range']).toBe(`bytes=4096-${4096 + body.length - 1}`);
    expect(ours.headers['x-ms-content-crc64']).toBe(crc64.toString('base64'));
    // Signed by the client's shared-key policy, with a request id from its pipeline.
    expect(ours.headers.authorization).toMatch(/^SharedKey acct:[A-Za-z0-9+/]{43}=$/);
    expect(ours.headers['x-ms-client-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(ours.body.equals(body)).toBe(true);
  });

  it('keeps a SAS URL\'s query and adds comp=page to it', async () => {
    const { seen, port } = await fakeAzure();
    const sas = 'sv=2025-01-05&ss=b&srt=sco&sp=rw&se=2030-01-01T00%3A00%3A00Z&sig=abc%2Bdef%3D';
    const blob = new BlobServiceClient(`http://127.0.0.1:${port}/acct?${sas}`, undefined, { retryOptions: RETRY })
      .getContainerClient('disks').getPageBlobClient('os.vhd');
    await blob.uploadPages(body, 0, body.length, { transactionalContentCrc64: crc64 });
    await putPage(blob, body, 0, crc64.toString('base64'));
    const [sdk, ours] = seen as [Seen, Seen];
    expect(new URL(ours.url ?? '', 'http://x').searchParams).toEqual(new URL(sdk.url ?? '', 'http://x').searchParams);
    expect(ours.url).toContain(sas);
    expect(ours.headers.authorization).toBeUndefined();
  });

  it('the store\'s clients of every account kind take the direct path (a silent fallback fails here)', () => {
    const url = 'http://127.0.0.1:1/acct';
    const clients = new AzureClients({
      viaString: { connectionString: `DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=${KEY};BlobEndpoint=${url};` },
      viaKey: { url, accountName: 'acct', accountKey: KEY },
      viaSas: { sasUrl: `${url}?sv=2025-01-05&sig=x` },
      viaClient: { client: new BlobServiceClient(url) },
    }, DEFAULT_RETRY);
    for (const account of ['viaString', 'viaKey', 'viaSas', 'viaClient']) {
      expect(putPageFastPath(clients.pageBlob({ account, container: 'disks', blob: 'os.vhd' }))).toBe(true);
    }
  });

  it('falls back to uploadPages where the client has no pipeline to send through', async () => {
    const { seen, port } = await fakeAzure();
    const blob = blobAt(port);
    delete (blob as unknown as { storageClientContext?: unknown }).storageClientContext;
    expect(putPageFastPath(blob)).toBe(false);
    await putPage(blob, body, 512, crc64.toString('base64'));
    expect(seen).toHaveLength(1);
    expect(seen[0]?.headers['x-ms-content-crc64']).toBe(crc64.toString('base64'));
    expect(seen[0]?.headers['x-ms-range']).toBe(`bytes=512-${512 + body.length - 1}`);
  });
});

describe('failures', () => {
  it('retries 503 with the client\'s retry policy, sending the same body again', async () => {
    const { seen, port } = await fakeAzure([{ status: 503 }, { status: 503 }, { status: 201 }]);
    await putPage(blobAt(port), body, 0, crc64.toString('base64'));
    expect(seen).toHaveLength(3);
    for (const s of seen) expect(s.body.equals(body)).toBe(true);
  });

  it('gives up after maxTries of 500 with a RestError the store maps to StoreIoFailed', async () => {
    const { seen, port } = await fakeAzure([{ status: 500, headers: { 'x-ms-error-code': 'InternalError' } }]);
    const err = await putPage(blobAt(port), body, 0, crc64.toString('base64')).catch((e: unknown) => e);
    expect(seen).toHaveLength(RETRY.maxTries);
    expect(err).toBeInstanceOf(RestError);
    expect(err).toMatchObject({ statusCode: 500, code: 'InternalError' });
    expect(isDefiniteRefusal(err)).toBe(false);
    expect(toStoreError(err, 'upload')).toMatchObject({ code: 'StoreIoFailed' });
  });

  it('a refusal is not retried and keeps Azure\'s error code, from the header or the XML body', async () => {
    const xml = '<?xml version="1.0" encoding="utf-8"?><Error><Code>InvalidPageRange</Code><Message>The page range specified is invalid.\nRequestId:1</Message></Error>';
    for (const headers of [{ 'x-ms-error-code': 'InvalidPageRange', 'content-type': 'application/xml' }, { 'content-type': 'application/xml' }] as Record<string, string>[]) {
      const { seen, port } = await fakeAzure([{ status: 416, headers, body: xml }]);
      const err = await putPage(blobAt(port), body, 0, crc64.toString('base64')).catch((e: unknown) => e);
      expect(seen).toHaveLength(1);
      expect(err).toBeInstanceOf(RestError);
      expect(err).toMatchObject({ statusCode: 416, code: 'InvalidPageRange' });
      expect((err as Error).message).toContain('The page range specified is invalid.');
      expect(isDefiniteRefusal(err)).toBe(true);
      const mapped = toStoreError(err, 'upload');
      expect(mapped).toBeInstanceOf(StoreError);
      expect(mapped).toMatchObject({ code: 'InvalidPageRange' });
      await new Promise((resolve) => server?.close(resolve));
      server = undefined;
    }
  });
});
