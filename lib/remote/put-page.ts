/**
 * Put Page for bulk uploads, sent through the page blob client's own request pipeline (its credential, the
 * tuned retry policy of clients.ts, request ids, logging, tracing, the HTTP agent) with the request built here.
 *
 * `PageBlobClient.uploadPages` runs every request through the SDK's generated operation layer as well: it maps
 * the options onto an operation spec, serialises the headers from parameter mappers, wraps the call in a
 * tracing span and parses each response header into a typed result (dates included). On this 2-core machine,
 * where Azurite shares the cores, that layer cost about 0.4 ms of CPU per 4 MiB request, a tenth of the upload's
 * client CPU, for a response vdcrypt only checks for its status. The pipeline is the same object the SDK uses,
 * so retries, authentication (shared key, SAS in the URL, a token credential) and timeouts behave exactly as
 * for `uploadPages`; only the operation layer is left out.
 *
 * Where the client does not expose that pipeline (another SDK version: the member is not part of its typed API),
 * `uploadPages` is used instead; `putPageFastPath` tells which one a client gets.
 */
import { createHttpHeaders, createPipelineRequest, type PipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';
import { type PageBlobClient, RestError } from '@azure/storage-blob';

import { crc64Option } from './state.js';

/** The REST API version of the requests built here: the one @azure/storage-blob 12.32 sends. */
const PUT_PAGE_API_VERSION = '2026-04-06';

interface RequestSender {
  sendRequest(request: PipelineRequest): Promise<PipelineResponse>;
}

const senders = new WeakMap<PageBlobClient, RequestSender | null>();

/** The client's pipeline (the SDK's `storageClientContext`), or null where this SDK version has none. */
function senderOf(client: PageBlobClient): RequestSender | null {
  let sender = senders.get(client);
  if (sender === undefined) {
    const context = (client as unknown as { storageClientContext?: Partial<RequestSender> }).storageClientContext;
    sender = typeof context?.sendRequest === 'function' ? (context as RequestSender) : null;
    senders.set(client, sender);
  }
  return sender;
}

/** Whether Put Pages to `client` go straight through its pipeline (else through `uploadPages`). */
export function putPageFastPath(client: PageBlobClient): boolean {
  return senderOf(client) !== null;
}

/**
 * Put Page: `body` (a multiple of 512 bytes, at most 4 MiB) at byte `offset`, with its CRC64 (base64 of the 8
 * bytes, as Azure's x-ms-content-crc64). Resolves once Azure has stored it; rejects with the SDK's RestError
 * (status, Azure error code) as `uploadPages` would.
 */
export async function putPage(client: PageBlobClient, body: Uint8Array, offset: number, crc64: string): Promise<void> {
  const sender = senderOf(client);
  if (sender === null) {
    await client.uploadPages(body, offset, body.length, crc64Option(crc64));
    return;
  }
  const headers = createHttpHeaders({
    'x-ms-version': PUT_PAGE_API_VERSION,
    'x-ms-page-write': 'update',
    'x-ms-range': `bytes=${offset}-${offset + body.length - 1}`,
    'x-ms-content-crc64': crc64,
    'content-length': String(body.length),
    'content-type': 'application/octet-stream',
    accept: 'application/xml',
  });
  const url = client.url;
  const request = createPipelineRequest({
    url: `${url}${url.includes('?') ? '&' : '?'}comp=page`, method: 'PUT', headers, body, allowInsecureConnection: true,
  });
  const response = await sender.sendRequest(request);
  if (response.status !== 201) throw refusal(request, response);
}

/** The RestError of a refused Put Page: the status, Azure's error code (header or XML body) and its message. */
function refusal(request: PipelineRequest, response: PipelineResponse): RestError {
  const text = response.bodyAsText ?? '';
  const code = response.headers.get('x-ms-error-code') ?? /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1]?.split('\n')[0];
  return new RestError(`Put Page refused: ${response.status}${code !== undefined ? ` ${code}` : ''}${message !== undefined ? `: ${message}` : ''}`, {
    statusCode: response.status, request, response, ...(code !== undefined ? { code } : {}),
  });
}
