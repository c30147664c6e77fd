/**
 * Azure Storage REST errors ("Blob service error codes") mapped onto the page store's `StoreError` codes, and
 * the backend's own configuration failures.
 *
 *   404 ContainerNotFound / BlobNotFound          → same code (a missing snapshot of a live blob: SnapshotNotFound)
 *   409 ContainerAlreadyExists / BlobAlreadyExists, PreviousSnapshotNotFound → same code
 *   416 InvalidPageRange / InvalidRange            → InvalidPageRange
 *   412 SequenceNumberConditionNotMet / ConditionNotMet → same code
 *   anything else (5xx after the SDK's retries, network failures, timeouts) → StoreIoFailed with the cause
 */
import { RestError } from '@azure/storage-blob';

import { VdcryptError } from '../errors.js';
import { StoreError, type StoreErrorCode } from '../store/index.js';

/** Failures of the Azure backend that are not storage answers: an account with no connection configured. */
export class RemoteError extends VdcryptError {}

const PASS_THROUGH = new Set<string>([
  'ContainerNotFound', 'ContainerAlreadyExists', 'BlobNotFound', 'BlobAlreadyExists', 'InvalidPageRange',
  'SequenceNumberConditionNotMet', 'ConditionNotMet', 'PreviousSnapshotNotFound', 'OperationNotAllowedOnSnapshot',
]);

/** The Azure error code of a failed request (`x-ms-error-code`), if the server sent one. */
export function azureErrorCode(err: unknown): string | undefined {
  if (!(err instanceof RestError)) return undefined;
  const details = err.details as { errorCode?: unknown } | undefined;
  const code = typeof details?.errorCode === 'string' ? details.errorCode : err.code;
  return typeof code === 'string' ? code : undefined;
}

export function azureStatus(err: unknown): number | undefined {
  return err instanceof RestError ? err.statusCode : undefined;
}

/** True when the server answered with a definite refusal (4xx): the request changed nothing. */
export function isDefiniteRefusal(err: unknown): boolean {
  const status = azureStatus(err);
  return status !== undefined && status >= 400 && status < 500 && status !== 408;
}

/** Await a request, treating 404 (already gone) as success. */
export async function ignoreNotFound(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (azureStatus(err) !== 404) throw err;
  }
}

/** A StoreError for a failed Azure request; `what` names the operation and object for the message. */
export function toStoreError(err: unknown, what: string): StoreError | TypeError | RangeError {
  if (err instanceof StoreError || err instanceof TypeError || err instanceof RangeError) return err;
  const code = azureErrorCode(err);
  const status = azureStatus(err);
  let mapped: StoreErrorCode = 'StoreIoFailed';
  if (code !== undefined && PASS_THROUGH.has(code)) mapped = code as StoreErrorCode;
  else if (code === 'InvalidRange' || status === 416) mapped = 'InvalidPageRange';
  else if (code === 'ContainerBeingDeleted') mapped = 'ContainerNotFound';
  else if (status === 412) mapped = 'ConditionNotMet';
  const detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return new StoreError(mapped, `${what}: ${code ?? status ?? 'request failed'} (${detail})`, { cause: err });
}
