/**
 * Failures of the page-blob layer itself. Store failures (`BlobNotFound`, `InvalidPageRange`, ...) and key
 * refusals (the 403 family) come from lib/store and lib/keys unchanged.
 *
 * | code                        | status | when                                                            |
 * |-----------------------------|--------|-----------------------------------------------------------------|
 * | `AccountEncryptionDisabled` | 409    | `encrypt` asked of a blob whose account has encryption disabled |
 * | `OperationAborted`          | 499    | a long operation stopped by its AbortSignal (finished chunks stay) |
 */
import { VdcryptError } from '../errors.js';

export type BlobErrorCode = 'AccountEncryptionDisabled' | 'OperationAborted';

const STATUS: Record<BlobErrorCode, number> = { AccountEncryptionDisabled: 409, OperationAborted: 499 };

export class BlobError extends VdcryptError {
  declare readonly code: BlobErrorCode;

  constructor(code: BlobErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { status: STATUS[code], cause: options.cause });
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw new BlobError('OperationAborted', 'the operation was stopped; run it again to resume', { cause: signal.reason });
  }
}
