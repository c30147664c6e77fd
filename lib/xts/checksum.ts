/**
 * CRC-64/NVME, the checksum Azure Storage calls CRC64 (`x-ms-content-crc64` on Put Page): reflected polynomial
 * 0x9A6C9329AC4BC9B5, initial value and final XOR all ones, sent as 8 little-endian bytes. Native: PCLMULQDQ
 * folding where the CPU has it (about 24 GB/s on 4 MiB in cache here, 36x MD5), slice-by-8 tables elsewhere
 * (native/crc64*.cc). The Azure SDK's own StorageCRC64Calculator is the test oracle.
 */
import { native } from './native.js';

/** The CRC64 of `data` as Azure sends it: 8 bytes, little-endian. */
export function crc64(data: Uint8Array): Buffer {
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
  return native.crc64(data);
}

