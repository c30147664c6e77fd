/**
 * Opening images: format detection, the strict VHD open (both footers, dynamic header, BAT) and the
 * differencing chain walk through parent locators (VHD spec, "Parent Locator" and "Differencing Hard Disk
 * Image"). `W2ru` paths resolve against the child's directory, `W2ku` paths are absolute; both UTF-16LE.
 * The parent's unique id must match the child's header; a file met twice (by device and inode) is a loop,
 * and a chain longer than `maxChainDepth` files is refused.
 */
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';

import { describeValue } from '../errors.js';
import { checkHeaderOffset, decodeUtf16le, parseDynamicHeader, validateBat, type DynamicHeader } from './dynamic.js';
import { VhdFormatError } from './errors.js';
import { ImageFile } from './file.js';
import { parseFooter, type VhdFooter } from './footer.js';
import { LayeredImage, type ChainMember, type DiskImage } from './image.js';
import { FlatLayer, SparseLayer, type Layer } from './layers.js';
import {
  BAT_ENTRY_SIZE, DYNAMIC_HEADER_SIZE, FOOTER_COOKIE, FOOTER_SIZE, PLATFORM_W2KU, PLATFORM_W2RU, SECTOR_SIZE,
} from './layout.js';

export const DEFAULT_MAX_CHAIN_DEPTH = 32;

export interface OpenImageOptions {
  /** `auto` (default): a VHD when the last 512 bytes are a footer (or the first are, to report truncation). */
  format?: 'auto' | 'vhd' | 'raw';
  /** Most files in a differencing chain, the child included (default 32). */
  maxChainDepth?: number;
}

interface OpenedVhd {
  layer: Layer;
  footer: VhdFooter;
  header?: DynamicHeader;
  chain: ChainMember[];
}

interface ChainContext {
  visited: Set<string>;
  maxDepth: number;
  files: ImageFile[];
}

/** Open a disk image for reading. Close it when done. */
export async function openImage(path: string, options: OpenImageOptions = {}): Promise<DiskImage> {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${describeValue(path)}`);
  if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describeValue(options)}`);
  const format = options.format ?? 'auto';
  if (format !== 'auto' && format !== 'vhd' && format !== 'raw') throw new RangeError(`format must be auto, vhd or raw, got ${String(format)}`);
  const maxDepth = options.maxChainDepth ?? DEFAULT_MAX_CHAIN_DEPTH;
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 1) throw new RangeError(`maxChainDepth must be a positive integer, got ${String(maxDepth)}`);

  const ctx: ChainContext = { visited: new Set(), maxDepth, files: [] };
  try {
    const file = await ImageFile.open(path);
    ctx.files.push(file);
    if (format === 'raw' || (format === 'auto' && !(await looksLikeVhd(file)))) {
      if (file.size === 0 || file.size % SECTOR_SIZE !== 0) {
        throw new VhdFormatError('VhdBadSize', 'fileSize', `a raw image must be a non-zero multiple of ${SECTOR_SIZE} bytes, got ${file.size}`);
      }
      return new LayeredImage({ path, format: 'raw', virtualSize: file.size, chain: [], layer: new FlatLayer(file, file.size), files: ctx.files });
    }
    const opened = await openVhd(file, ctx);
    return new LayeredImage({
      path, format: opened.footer.diskType, virtualSize: opened.footer.currentSize, footer: opened.footer,
      ...(opened.header === undefined ? {} : { header: opened.header }),
      chain: opened.chain, layer: opened.layer, files: ctx.files,
    });
  } catch (error) {
    await Promise.allSettled(ctx.files.map((f) => f.close()));
    throw error;
  }
}

async function looksLikeVhd(file: ImageFile): Promise<boolean> {
  if (file.size < FOOTER_SIZE) return false;
  const cookieBytes = FOOTER_COOKIE.length;
  const tail = await file.readAt(file.size - FOOTER_SIZE, cookieBytes, 'footer');
  const head = await file.readAt(0, cookieBytes, 'footer copy');
  const ascii = (b: Uint8Array): string => String.fromCharCode(...b);
  return ascii(tail) === FOOTER_COOKIE || ascii(head) === FOOTER_COOKIE;
}

/** Open one VHD file (and, for a differencing disk, its ancestors). `file` is already in `ctx.files`. */
async function openVhd(file: ImageFile, ctx: ChainContext): Promise<OpenedVhd> {
  ctx.visited.add(file.identity);
  try {
    return await openVhdFile(file, ctx);
  } catch (error) {
    if (error instanceof VhdFormatError && error.file === undefined) error.setFile(file.path);
    throw error;
  }
}

async function openVhdFile(file: ImageFile, ctx: ChainContext): Promise<OpenedVhd> {
  if (file.size < FOOTER_SIZE) {
    throw new VhdFormatError('VhdTruncated', 'footer', `a VHD holds at least its ${FOOTER_SIZE}-byte footer; the file has ${file.size} bytes`);
  }
  const tail = await file.readAt(file.size - FOOTER_SIZE, FOOTER_SIZE, 'footer');
  if (String.fromCharCode(...tail.subarray(0, FOOTER_COOKIE.length)) !== FOOTER_COOKIE) {
    const head = await file.readAt(0, FOOTER_COOKIE.length, 'footer copy');
    if (String.fromCharCode(...head) === FOOTER_COOKIE) {
      throw new VhdFormatError('VhdTruncated', 'footer', 'the file starts with a footer copy but does not end with a footer: it was cut short');
    }
  }
  const footer = parseFooter(tail, 'footer');
  const dataEnd = file.size - FOOTER_SIZE;
  const member: ChainMember = { path: file.path, format: footer.diskType, virtualSize: footer.currentSize, uniqueId: footer.uniqueId };
  if (footer.diskType === 'fixed') {
    if (dataEnd < footer.currentSize) {
      throw new VhdFormatError('VhdTruncated', 'footer.currentSize', `a fixed VHD of ${footer.currentSize} bytes needs ${footer.currentSize + FOOTER_SIZE} bytes of file, got ${file.size}`);
    }
    if (dataEnd > footer.currentSize) {
      throw new VhdFormatError('VhdBadSize', 'footer.currentSize', `a fixed VHD of ${footer.currentSize} bytes must be ${footer.currentSize + FOOTER_SIZE} bytes long, the file has ${file.size}`);
    }
    return { layer: new FlatLayer(file, footer.currentSize), footer, chain: [member] };
  }

  if (file.size < 2 * FOOTER_SIZE + DYNAMIC_HEADER_SIZE) {
    throw new VhdFormatError('VhdTruncated', 'file', `a ${footer.diskType} VHD needs at least ${2 * FOOTER_SIZE + DYNAMIC_HEADER_SIZE} bytes, got ${file.size}`);
  }
  const copy = await file.readAt(0, FOOTER_SIZE, 'footerCopy');
  if (!Buffer.from(copy).equals(tail)) {
    throw new VhdFormatError('VhdFooterMismatch', 'footerCopy', 'the footer copy at offset 0 differs from the footer at the end of the file');
  }
  const headerOffset = checkHeaderOffset(footer, file.size);
  const header = parseDynamicHeader(await file.readAt(headerOffset, DYNAMIC_HEADER_SIZE, 'header'), headerOffset, footer, file.size);
  const blockCount = Math.ceil(footer.currentSize / header.blockSize);
  const batBytes = await file.readAt(header.tableOffset, blockCount * BAT_ENTRY_SIZE, 'header.tableOffset');
  const bat = validateBat(batBytes, header, blockCount, file.size);

  let parent: OpenedVhd | null = null;
  if (footer.diskType === 'differencing') parent = await openParent(file, header, ctx);
  const layer = new SparseLayer(file, footer.currentSize, header.blockSize, bat, parent?.layer ?? null);
  return { layer, footer, header, chain: [member, ...(parent?.chain ?? [])] };
}

/** Candidate parent paths from the locators: relative ones (W2ru) first, then absolute ones (W2ku). */
async function locatorPaths(file: ImageFile, header: DynamicHeader): Promise<string[]> {
  const out: string[] = [];
  const ordered = [
    ...header.parentLocators.filter((l) => l.platformCodeValue === PLATFORM_W2RU),
    ...header.parentLocators.filter((l) => l.platformCodeValue === PLATFORM_W2KU),
  ];
  for (const locator of ordered) {
    const field = `header.parentLocator[${locator.index}].data`;
    const raw = await file.readAt(locator.platformDataOffset, locator.platformDataLength, field);
    const text = decodeUtf16le(raw, field).replace(/^\\\\\?\\/, '');
    if (text.length === 0) throw new VhdFormatError('VhdBadLocator', field, `locator ${locator.index} holds an empty path`);
    const posix = text.replaceAll('\\', '/');
    if (locator.platformCodeValue === PLATFORM_W2RU) {
      out.push(resolve(dirname(file.path), posix));
    } else if (isAbsolute(posix)) {
      out.push(posix);
    }
  }
  return out;
}

async function openParent(file: ImageFile, header: DynamicHeader, ctx: ChainContext): Promise<OpenedVhd> {
  if (ctx.visited.size >= ctx.maxDepth) {
    throw new VhdFormatError('VhdChainTooDeep', 'header.parentLocators',
      `the differencing chain is longer than the ${ctx.maxDepth} files allowed`);
  }
  const candidates = await locatorPaths(file, header);
  let mismatch: VhdFormatError | null = null;
  for (const candidate of candidates) {
    let identity: string;
    try {
      const st = await stat(candidate, { bigint: true });
      if (!st.isFile()) continue;
      identity = `${st.dev}:${st.ino}`;
    } catch {
      continue; // this locator does not lead anywhere; try the next
    }
    if (ctx.visited.has(identity)) {
      throw new VhdFormatError('VhdParentLoop', 'header.parentLocators',
        `the parent ${candidate} is already in the chain (${identity === file.identity ? 'the disk is its own parent' : 'a loop'})`);
    }
    const parentFile = await ImageFile.open(candidate);
    ctx.files.push(parentFile);
    const tail = parentFile.size >= FOOTER_SIZE ? await parentFile.readAt(parentFile.size - FOOTER_SIZE, FOOTER_SIZE, 'footer') : null;
    const parentFooter = tail === null ? null : tryFooter(tail);
    if (parentFooter !== null && !Buffer.from(parentFooter.uniqueId).equals(header.parentUniqueId)) {
      mismatch = new VhdFormatError('VhdParentIdMismatch', 'header.parentUniqueId',
        `the parent ${candidate} has unique id ${hexId(parentFooter.uniqueId)}, the child expects ${hexId(header.parentUniqueId)}`);
      continue;
    }
    return await openVhd(parentFile, ctx);
  }
  if (mismatch !== null) throw mismatch;
  throw new VhdFormatError('VhdParentNotFound', 'header.parentLocators',
    `no parent locator leads to a file (tried: ${candidates.length === 0 ? 'none usable' : candidates.join(', ')}; parent name '${header.parentUnicodeName}')`);
}

function tryFooter(bytes: Uint8Array): VhdFooter | null {
  try {
    return parseFooter(bytes);
  } catch {
    return null; // reported by the full open of that file
  }
}

function hexId(id: Uint8Array): string {
  return Buffer.from(id).toString('hex');
}
