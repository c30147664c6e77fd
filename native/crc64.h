// CRC-64/NVME, the checksum Azure Storage calls CRC64 (the x-ms-content-crc64 header of Put Page): reflected
// polynomial 0x9A6C9329AC4BC9B5 (0xAD93D23594C93659 in normal form), initial value and final XOR all ones.
// Check value of "123456789": 0xAE8B14860A799888. Azure sends the 64-bit value as 8 bytes, little-endian.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vdcrypt {

// The CRC of `previous`'s bytes followed by data[0, n): pass 0 to start. Folds 128 bytes at a time with
// PCLMULQDQ where the CPU has it (crc64_pclmul.cc), the rest by slice-by-8 tables (crc64.cc).
uint64_t crc64_nvme(uint64_t previous, const uint8_t* data, size_t n);

// Internals shared by the two files. States here are the running register (inverted at start and end by
// crc64_nvme only).
constexpr size_t kFoldBlockBytes = 128;   // eight 16-byte lanes per folding step
constexpr size_t kFoldMinBytes = 256;     // below this the tables are as fast
uint64_t crc64_tables(uint64_t state, const uint8_t* data, size_t n);
// Folds `blocks` * 128 bytes into `state` and returns the state after them (needs PCLMULQDQ and SSE4.1).
uint64_t crc64_fold_pclmul(uint64_t state, const uint8_t* data, size_t blocks);

}  // namespace vdcrypt
