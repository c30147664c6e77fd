/**
 * Independent oracle for the XTS tests: node:crypto's `aes-256-xts` (OpenSSL), called once per sector with
 * the IV set to the sector number as a 128-bit little-endian integer, as a Node user would do it today.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

export function sectorIv(sector: bigint): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64LE(sector, 0);
  return iv;
}

export function referenceXts(encrypt: boolean, key: Uint8Array, data: Uint8Array, firstSector: bigint,
  sectorSize: number): Buffer {
  const out = Buffer.alloc(data.length);
  for (let i = 0; i * sectorSize < data.length; i++) {
    const iv = sectorIv(firstSector + BigInt(i));
    const c = encrypt ? createCipheriv('aes-256-xts', key, iv) : createDecipheriv('aes-256-xts', key, iv);
    const part = c.update(data.subarray(i * sectorSize, (i + 1) * sectorSize));
    c.final();
    part.copy(out, i * sectorSize);
  }
  return out;
}

export function hex(s: string): Buffer {
  return Buffer.from(s, 'hex');
}
