/**
 * `inspectImage`: a structure and validation report for one image (used by `vdcrypt inspect`). It never
 * throws for a malformed image: the strict open's error becomes `error`, and whatever footer could still be
 * decoded is shown.
 */
import { describeValue } from '../errors.js';
import { VhdFormatError } from './errors.js';
import { ImageFile } from './file.js';
import { parseFooter, type VhdFooter } from './footer.js';
import type { ChainMember, ImageFormat } from './image.js';
import { FOOTER_SIZE } from './layout.js';
import { openImage, type OpenImageOptions } from './open.js';

export interface ImageReport {
  path: string;
  fileSize: number;
  format: ImageFormat | 'unknown';
  valid: boolean;
  virtualSize?: number;
  allocatedSize?: number;
  footer?: Omit<VhdFooter, 'raw' | 'uniqueId'> & { uniqueId: string };
  header?: {
    tableOffset: number;
    maxTableEntries: number;
    blockSize: number;
    parentUniqueId: string;
    parentUnicodeName: string;
    parentLocators: Array<{ index: number; platformCode: string; spaceBytes: number; length: number; offset: number }>;
  };
  chain?: Array<Omit<ChainMember, 'uniqueId'> & { uniqueId: string }>;
  error?: { code: string; field: string; message: string; file?: string };
}

export async function inspectImage(path: string, options: OpenImageOptions = {}): Promise<ImageReport> {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${describeValue(path)}`);
  const file = await ImageFile.open(path);
  const fileSize = file.size;
  let footer: VhdFooter | null = null;
  try {
    if (fileSize >= FOOTER_SIZE) footer = parseFooter(await file.readAt(fileSize - FOOTER_SIZE, FOOTER_SIZE, 'footer'));
  } catch {
    footer = null; // reported through the strict open below
  } finally {
    await file.close();
  }
  const report: ImageReport = { path, fileSize, format: footer?.diskType ?? 'unknown', valid: false };
  if (footer !== null) report.footer = footerSummary(footer);
  try {
    const image = await openImage(path, options);
    try {
      report.valid = true;
      report.format = image.format;
      report.virtualSize = image.virtualSize;
      report.allocatedSize = image.allocatedSize;
      if (image.footer !== undefined) report.footer = footerSummary(image.footer);
      const h = image.header;
      if (h !== undefined) {
        report.header = {
          tableOffset: h.tableOffset, maxTableEntries: h.maxTableEntries, blockSize: h.blockSize,
          parentUniqueId: hex(h.parentUniqueId), parentUnicodeName: h.parentUnicodeName,
          parentLocators: h.parentLocators.map((l) => ({
            index: l.index, platformCode: l.platformCode, spaceBytes: l.spaceBytes, length: l.platformDataLength, offset: l.platformDataOffset,
          })),
        };
      }
      report.chain = image.chain.map((m) => ({ ...m, uniqueId: hex(m.uniqueId) }));
    } finally {
      await image.close();
    }
  } catch (error) {
    if (!(error instanceof VhdFormatError)) throw error;
    report.error = { code: error.code, field: error.field, message: error.message, ...(error.file === undefined ? {} : { file: error.file }) };
  }
  return report;
}

function footerSummary(footer: VhdFooter): NonNullable<ImageReport['footer']> {
  const { raw: _raw, uniqueId, ...rest } = footer;
  return { ...rest, uniqueId: hex(uniqueId) };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
