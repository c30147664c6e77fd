/**
 * Failures of the import/export pipeline itself. Image format errors (`VhdFormatError`, including
 * `VhdNotAzureAligned` from the `azure: 'refuse'` rule), store errors (`BlobAlreadyExists`, ...) and key refusals
 * (the 403 family) pass through unchanged.
 *
 * | code                  | status | when                                                                      |
 * |-----------------------|--------|---------------------------------------------------------------------------|
 * | `ImportSourceChanged` | 409    | `resume` onto a blob whose checkpoint names another image, mode or size   |
 * | `NoImportToResume`    | 409    | `resume` onto an existing blob that carries no import checkpoint          |
 * | `NotAFixedVhdBlob`    | 400    | export with `blobLayout: 'fixed-vhd'` of a blob without a fixed footer    |
 * | `OperationAborted`    | 499    | stopped by the AbortSignal (an import keeps its checkpoint; an export     |
 * |                       |        | leaves no output file)                                                    |
 */
import { VdcryptError } from '../errors.js';

export type PipelineErrorCode = 'ImportSourceChanged' | 'NoImportToResume' | 'NotAFixedVhdBlob' | 'OperationAborted';

const STATUS: Record<PipelineErrorCode, number> = {
  ImportSourceChanged: 409,
  NoImportToResume: 409,
  NotAFixedVhdBlob: 400,
  OperationAborted: 499,
};

export class PipelineError extends VdcryptError {
  declare readonly code: PipelineErrorCode;

  constructor(code: PipelineErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { status: STATUS[code], cause: options.cause });
  }
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted === true) {
    throw new PipelineError('OperationAborted', `${what} was stopped`, { cause: signal.reason });
  }
}
