// CRC-64/NVME, the checksum Azure Storage calls CRC64 (the x-ms-content-crc64 header of Put Page): reflected
// polynomial 0x9A6C9329AC4BC9B5 (0xAD93D23594C93659 in normal form), initial value and final XOR all ones.
// Check value of "123456789": 0xAE8B14860A799888. Azure sends the 64-bit value as 8 bytes, little-endian.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vdcrypt {

// The CRC of `previous`'s bytes followed by data[0, n): pass 0 to start. Folds 256 bytes at a time with
// VPCLMULQDQ on 512-bit registers where the CPU has them (crc64_vpclmul512.cc), else 128 bytes at a time with
// PCLMULQDQ (crc64_pclmul.cc); the rest by slice-by-8 tables (crc64.cc).
uint64_t crc64_nvme(uint64_t previous, const uint8_t* data, size_t n);

// The code paths, for tests that check each one against the oracle. kAuto: the best available.
enum class Crc64Path { kAuto, kTables, kPclmul, kVpclmul512 };
bool crc64_path_available(Crc64Path path);
// crc64_nvme on the given path (which must be available), the tail of any folding path by the narrower ones.
uint64_t crc64_nvme_path(uint64_t previous, const uint8_t* data, size_t n, Crc64Path path);

// Internals shared by the two files. States here are the running register (inverted at start and end by
// crc64_nvme only).
constexpr size_t kFoldBlockBytes = 128;   // eight 16-byte lanes per folding step
constexpr size_t kFoldMinBytes = 256;     // below this the tables are as fast
uint64_t crc64_tables(uint64_t state, const uint8_t* data, size_t n);
// Folds `blocks` * 128 bytes into `state` and returns the state after them (needs PCLMULQDQ and SSE4.1).
uint64_t crc64_fold_pclmul(uint64_t state, const uint8_t* data, size_t blocks);
constexpr size_t kWideFoldBlockBytes = 256;  // sixteen 16-byte lanes per step, in four 512-bit registers
constexpr size_t kWideFoldMinBytes = 512;
// The same with 256-byte blocks (needs AVX-512 F/BW/VL, VPCLMULQDQ, PCLMULQDQ).
uint64_t crc64_fold_vpclmul512(uint64_t state, const uint8_t* data, size_t blocks);
// Joins `count` 16-byte folding lanes (count * 16 bytes, in message order) into the state after them, with
// PCLMULQDQ: the end of both folding paths.
uint64_t crc64_join_lanes(const uint8_t* lanes, size_t count);
// The two constants of crc64_fold_vpclmul512's step, computed once: [0] x^2111 mod P (for a lane's low
// quadword), [1] x^2047 mod P (its high quadword).
const uint64_t* crc64_wide_fold_constants();
// The CRC-64/NVME of the bytes folded into sixteen lanes (SealCrc: lane 0 started from the all-ones state).
uint64_t crc64_seal_value(const uint8_t lanes[256]);
// x^n mod P in the reflected form the folding constants use (crc64_pclmul.cc explains the bit order).
uint64_t crc64_x_pow_mod(unsigned n);

}  // namespace vdcrypt
