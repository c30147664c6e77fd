/**
 * The error types every vdcrypt layer throws.
 *
 * - `TypeError` for an argument of the wrong type, `RangeError` for a bad length, alignment or number
 *   (the built-in classes, as Node's own APIs do).
 * - {@link VdcryptError} subclasses for domain failures. Each carries a stable `code` that scripts and the
 *   CLI branch on, and an HTTP-like `status` mirroring the Azure Storage answer for the same failure.
 *
 * Messages say what was expected and what was given; they never contain key material.
 */

export interface VdcryptErrorOptions {
  /** HTTP-like status, mirroring Azure where Azure has an answer (403 for key refusals, 404 for not found). */
  status?: number;
  cause?: unknown;
}

export class VdcryptError extends Error {
  /** Stable machine-readable code, e.g. `KeyDisposed`, `InvalidPageRange`, `KeyVaultEncryptionKeyNotFound`. */
  readonly code: string;
  /** HTTP-like status code. */
  readonly status: number;

  constructor(code: string, message: string, options: VdcryptErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
  }

  toJSON(): { code: string; status: number; message: string } {
    return { code: this.code, status: this.status, message: this.message };
  }
}

/** Failures of the XTS engine that are not argument errors. */
export class XtsError extends VdcryptError {}

/** Describe a value for an error message without echoing its contents (it may be secret). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of ${value.byteLength} bytes`;
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'null prototype'})`;
  return `a ${typeof value}`;
}
