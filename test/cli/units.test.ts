/** Unit tests of the CLI's pure parts: value parsing, the encryption map, the benchmark chart, exit codes. */
import { describe, expect, it } from 'vitest';

import type { EncryptionStatus } from '../../lib/blob/index.js';
import { VdcryptError } from '../../lib/errors.js';
import { parseBenchTable, renderBenchSvg } from '../../lib/cli/bench-svg.js';
import { describeError, exitCodeFor } from '../../lib/cli/errors.js';
import { buildMap, MIXED, PLAINTEXT, UNALLOCATED } from '../../lib/cli/map/cells.js';
import { parseBlobAddress, parseKeyAddress, parseSize } from '../../lib/cli/parse.js';

describe('parsing', () => {
  it.each([['64M', 64 * 1024 ** 2], ['1G', 1024 ** 3], ['4096', 4096], ['2KiB', 2048], ['3MB', 3 * 1024 ** 2], ['1t', 1024 ** 4], ['512B', 512]])(
    'size %s', (text, bytes) => expect(parseSize(text)).toBe(bytes));
  it.each(['', '12x', '-1', '1.5M', 'M'])('refuses size %j', (text) => expect(() => parseSize(text)).toThrow(/size must be bytes/));
  it('blob and key addresses', () => {
    expect(parseBlobAddress('a/c/b')).toEqual({ account: 'a', container: 'c', blob: 'b' });
    expect(parseBlobAddress('a/c/dir/b.vhd@snap1')).toEqual({ account: 'a', container: 'c', blob: 'dir/b.vhd', snapshot: 'snap1' });
    for (const bad of ['a/c', 'a//b', 'a/c/b@', 'a/c/b@x@y']) expect(() => parseBlobAddress(bad)).toThrow(/account\/container\/blob/);
    expect(parseKeyAddress('v/k')).toEqual({ vault: 'v', key: 'k' });
    expect(() => parseKeyAddress('v')).toThrow(/vault\/key/);
  });
});

describe('exit codes', () => {
  it('maps the error families', () => {
    const code = (e: unknown): number => exitCodeFor(describeError(e));
    expect(code(new VdcryptError('KeyVaultEncryptionKeyDisabled', 'x', { status: 403 }))).toBe(3);
    expect(code(new VdcryptError('KeyVaultAuthenticationFailed', 'x', { status: 401 }))).toBe(3);
    expect(code(new VdcryptError('BlobNotFound', 'x', { status: 404 }))).toBe(4);
    expect(code(new VdcryptError('InvalidPageRange', 'x', { status: 416 }))).toBe(2);
    expect(code(new RangeError('x'))).toBe(2);
    expect(code(new VdcryptError('BlobAlreadyExists', 'x', { status: 409 }))).toBe(1);
    expect(code(new Error('bug'))).toBe(1);
    expect(describeError(new Error('bug')).expected).toBe(false);
  });
});

function status(size: number, ranges: EncryptionStatus['ranges']): EncryptionStatus {
  const bytes = (state: string): number => ranges.filter((r) => r.state === state).reduce((s, r) => s + r.end - r.start + 1, 0);
  const enc = bytes('encrypted');
  const plain = bytes('plaintext');
  return { blob: 'a/c/b', size, serverEncrypted: plain === 0, allocatedBytes: enc + plain, encryptedBytes: enc, plaintextBytes: plain, unallocatedBytes: size - enc - plain, ranges };
}

describe('encryption map', () => {
  it('cells: unallocated only when empty, mixed when both, else the state; the last cell takes the footer page', () => {
    const KIB = 1024;
    const map = buildMap(status(64 * KIB + 512, [
      { start: 0, end: 8 * KIB - 1, state: 'plaintext', generation: null },
      { start: 9 * KIB, end: 9 * KIB + 511, state: 'encrypted', generation: 1 },
      { start: 16 * KIB, end: 17 * KIB - 1, state: 'encrypted', generation: 2 },
      { start: 64 * KIB, end: 64 * KIB + 511, state: 'plaintext', generation: null },
    ]), 8);
    expect(map.cellBytes).toBe(8 * KIB);
    expect(map.cells).toEqual([PLAINTEXT, 1, 2, UNALLOCATED, UNALLOCATED, UNALLOCATED, UNALLOCATED, PLAINTEXT]);
    expect(map.generations).toEqual([1, 2]);
    const mixed = buildMap(status(16 * KIB, [
      { start: 0, end: 1023, state: 'plaintext', generation: null }, { start: 1024, end: 1535, state: 'encrypted', generation: 1 },
    ]), 2);
    expect(mixed.cells).toEqual([MIXED, UNALLOCATED]);
    expect(buildMap(status(512, []), 256).cells).toEqual([UNALLOCATED]);
  });
});

describe('benchmark chart', () => {
  const md = [
    '| group | case | impl | GB/s | cycles/B | × openssl -bytes 512 | × openssl -bytes 16384 |',
    '|---|---|---|---:|---:|---:|---:|',
    '| in-cache | encrypt 64 x 512 B | vaes | 9.10 | 0.300 | 2.50 | 1.90 |',
    '| in-cache | encrypt 1 x 512 B | vaes | 2.00 | 1.500 | 0.55 | 0.40 |',
    '',
  ].join('\n');
  it('parses the ratio rows and draws one bar each with the 1x and 2x lines', () => {
    const rows = parseBenchTable(md);
    expect(rows).toEqual([
      { label: 'in-cache · encrypt 64 x 512 B · vaes', gbps: 9.1, ratio: 2.5 },
      { label: 'in-cache · encrypt 1 x 512 B · vaes', gbps: 2, ratio: 0.55 },
    ]);
    const svg = renderBenchSvg(rows, 'bench');
    expect(svg.match(/<rect x=/g)).toHaveLength(2);
    expect(svg).toContain('2.50×');
    expect(svg).toContain('2× goal');
  });
});
