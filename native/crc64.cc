// CRC-64/NVME by slicing: eight 256-entry tables, eight bytes per step (see crc64.h for the parameters).
#include "crc64.h"

#include <cstring>

#include "xts.h"

namespace vdcrypt {
namespace {

constexpr uint64_t kReflectedPoly = 0x9A6C9329AC4BC9B5ull;

struct Tables {
  uint64_t t[8][256];
  Tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint64_t crc = i;
      for (int bit = 0; bit < 8; ++bit) crc = (crc & 1) != 0 ? (crc >> 1) ^ kReflectedPoly : crc >> 1;
      t[0][i] = crc;
    }
    for (int k = 1; k < 8; ++k) {
      for (uint32_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
    }
  }
};

const Tables& tables() {
  static const Tables instance;  // thread-safe initialisation (C++11 statics)
  return instance;
}

}  // namespace

// The running (not inverted) state over data[0, n) by the tables.
uint64_t crc64_tables(uint64_t crc, const uint8_t* data, size_t n) {
  const auto& t = tables().t;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);  // x86-64 is little-endian: the first byte is the low byte
    crc ^= word;
    crc = t[7][crc & 0xff] ^ t[6][(crc >> 8) & 0xff] ^ t[5][(crc >> 16) & 0xff] ^ t[4][(crc >> 24) & 0xff] ^
          t[3][(crc >> 32) & 0xff] ^ t[2][(crc >> 40) & 0xff] ^ t[1][(crc >> 48) & 0xff] ^ t[0][crc >> 56];
    data += 8;
    n -= 8;
  }
  while (n-- > 0) crc = t[0][(crc ^ *data++) & 0xff] ^ (crc >> 8);
  return crc;
}

uint64_t crc64_x_pow_mod(unsigned n) {
  constexpr uint64_t kNormalPoly = 0xAD93D23594C93659ull;  // x^64 implied
  uint64_t r = 1;  // normal form: bit j is x^j
  for (unsigned i = 0; i < n; ++i) r = (r & (1ull << 63)) != 0 ? (r << 1) ^ kNormalPoly : r << 1;
  uint64_t reflected = 0;
  for (int i = 0; i < 64; ++i) reflected |= ((r >> i) & 1) << (63 - i);
  return reflected;
}

const uint64_t* crc64_wide_fold_constants() {
  static const uint64_t k[2] = {crc64_x_pow_mod(2111), crc64_x_pow_mod(2047)};
  return k;
}

uint64_t crc64_seal_value(const uint8_t lanes[256]) { return ~crc64_join_lanes(lanes, 16); }

bool crc64_path_available(Crc64Path path) {
  const CpuFeatures& f = cpu_features();
  switch (path) {
    case Crc64Path::kTables: return true;
    case Crc64Path::kPclmul: return f.pclmulqdq && f.sse41;
    case Crc64Path::kVpclmul512: return f.vpclmulqdq && f.avx512f && f.avx512bw && f.avx512vl && f.pclmulqdq && f.sse41;
    case Crc64Path::kAuto: return true;
  }
  return false;
}

uint64_t crc64_nvme_path(uint64_t previous, const uint8_t* data, size_t n, Crc64Path path) {
  uint64_t crc = ~previous;
  if (path == Crc64Path::kAuto) {
    static const Crc64Path best = crc64_path_available(Crc64Path::kVpclmul512) ? Crc64Path::kVpclmul512
                                  : crc64_path_available(Crc64Path::kPclmul)   ? Crc64Path::kPclmul
                                                                               : Crc64Path::kTables;
    path = best;
  }
  if (path == Crc64Path::kVpclmul512 && n >= kWideFoldMinBytes) {
    const size_t blocks = n / kWideFoldBlockBytes;
    crc = crc64_fold_vpclmul512(crc, data, blocks);
    data += blocks * kWideFoldBlockBytes;
    n -= blocks * kWideFoldBlockBytes;
  }
  if (path != Crc64Path::kTables && n >= kFoldMinBytes) {
    const size_t blocks = n / kFoldBlockBytes;
    crc = crc64_fold_pclmul(crc, data, blocks);
    data += blocks * kFoldBlockBytes;
    n -= blocks * kFoldBlockBytes;
  }
  return ~crc64_tables(crc, data, n);
}

uint64_t crc64_nvme(uint64_t previous, const uint8_t* data, size_t n) {
  return crc64_nvme_path(previous, data, n, Crc64Path::kAuto);
}

}  // namespace vdcrypt
