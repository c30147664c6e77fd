/**
 * CRC-64/NVME, the checksum Azure Storage calls CRC64 (`x-ms-content-crc64` on Put Page): reflected polynomial
 * 0x9A6C9329AC4BC9B5, initial value and final XOR all ones, sent as 8 little-endian bytes. Native: VPCLMULQDQ
 * folding on 512-bit registers where the CPU has AVX-512, else PCLMULQDQ folding, else slice-by-8 tables
 * (native/crc64*.cc). The Azure SDK's own StorageCRC64Calculator is the test oracle, for every path.
 */
import { native } from './native.js';

/** The CRC64 of `data` as Azure sends it: 8 bytes, little-endian. */
export function crc64(data: Uint8Array): Buffer {
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
  return native.crc64(data);
}

/** The native code paths of {@link crc64} ('auto' picks the best one this CPU runs). */
export type Crc64Path = 'auto' | 'tables' | 'pclmul' | 'vpclmul512';

/** {@link crc64} on one code path, for tests; null where this CPU lacks it. */
export function crc64OnPath(data: Uint8Array, path: Crc64Path): Buffer | null {
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
  return native.crc64(data, path);
}
