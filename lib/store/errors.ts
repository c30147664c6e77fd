/**
 * Domain failures of the page store, with the Azure Storage error code and status for the same failure
 * (Azure Storage REST "Blob service error codes"), plus the store's own `StoreIoFailed`, `StoreClosed`,
 * `StoreLocked` and `StoreCorrupt`.
 */
import { VdcryptError } from '../errors.js';

export const STORE_ERROR_STATUS = {
  ContainerNotFound: 404,
  ContainerAlreadyExists: 409,
  BlobNotFound: 404,
  BlobAlreadyExists: 409,
  SnapshotNotFound: 404,
  PreviousSnapshotNotFound: 409,
  InvalidPageRange: 416,
  SequenceNumberConditionNotMet: 412,
  ConditionNotMet: 412,
  OperationNotAllowedOnSnapshot: 400,
  /** A write, fsync or metadata commit failed. The store refuses writes until it is reopened. */
  StoreIoFailed: 500,
  StoreClosed: 500,
  /** Another process holds the store directory. */
  StoreLocked: 409,
  /** The store's files disagree with its metadata in a way recovery cannot repair. */
  StoreCorrupt: 500,
} as const;

export type StoreErrorCode = keyof typeof STORE_ERROR_STATUS;

export class StoreError extends VdcryptError {
  declare readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { status: STORE_ERROR_STATUS[code], cause: options.cause });
  }
}
