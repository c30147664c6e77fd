/**
 * The one error type of the VHD format layer.
 *
 * Every way an image can be malformed or hostile (see the hostile classes in the VHD reference) maps to a
 * {@link VhdFormatError} with a stable `code`, the offending `field` (e.g. `footer.checksum`,
 * `header.blockSize`, `bat[17]`, `header.parentLocator[0].dataLength`) and status 400: the image is a bad
 * request, not a server fault. Argument mistakes by the caller stay `TypeError`/`RangeError`.
 */
import { VdcryptError, type VdcryptErrorOptions } from '../errors.js';

/** Every code a {@link VhdFormatError} can carry. */
export const VHD_ERROR_CODES = [
  'VhdBadCookie',
  'VhdBadFooterChecksum',
  'VhdBadHeaderChecksum',
  'VhdFooterMismatch',
  'VhdBadVersion',
  'VhdUnknownDiskType',
  'VhdBadSize',
  'VhdBadHeaderOffset',
  'VhdBadTableOffset',
  'VhdBadBlockSize',
  'VhdBadTableEntries',
  'VhdBatEntryOutOfRange',
  'VhdBatEntryOverlap',
  'VhdTruncated',
  'VhdParentNotFound',
  'VhdParentIdMismatch',
  'VhdParentLoop',
  'VhdChainTooDeep',
  'VhdBadLocator',
  'VhdBadUtf16',
  'VhdNotAzureAligned',
] as const;
export type VhdErrorCode = (typeof VHD_ERROR_CODES)[number];

export const VHD_ERROR_STATUS = 400;

export class VhdFormatError extends VdcryptError {
  declare readonly code: VhdErrorCode;
  /** The structure field at fault, e.g. `footer.currentSize` or `bat[3]`. */
  readonly field: string;
  /** The image file at fault, once known (a parent's path when a parent is malformed). */
  file: string | undefined;

  constructor(code: VhdErrorCode, field: string, message: string, options: VdcryptErrorOptions = {}) {
    super(code, message, { status: VHD_ERROR_STATUS, ...options });
    this.field = field;
    this.file = undefined;
  }

  /** Name the file at fault, once, in `file` and at the head of the message. */
  setFile(path: string): void {
    if (this.file !== undefined) return;
    this.file = path;
    this.message = `${path}: ${this.message}`;
  }

  override toJSON(): { code: string; status: number; message: string; field: string } {
    return { ...super.toJSON(), field: this.field };
  }
}
