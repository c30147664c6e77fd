// CRC-64/NVME folding with PCLMULQDQ: eight 128-bit lanes, 128 bytes per step (see crc64.h).
//
// Bit order: a reflected 64-bit value v stands for the polynomial sum of v_i * x^(63 - i), and a 16-byte lane
// loaded from memory for sum r_i * x^(127 - i): its low quadword holds the higher-degree half. The carry-less
// product of two reflected 64-bit values, read as a 128-bit lane, is the polynomial product times x. So to
// multiply a half by x^n mod P we multiply by the constant K = x^(n - 1) mod P. Folding a lane forward by
// 8 lanes (1024 bits) maps A = Hi * x^64 + Lo to Hi * x^1088 + Lo * x^1024 (mod P): constants x^1087 and x^1023;
// joining lanes, one lane forward (128 bits): x^191 and x^127 (crc64_join_lanes, also used by the 512-bit
// path). The last lane is a 16-byte message whose CRC from state 0 is the state we return (the tables finish
// it). The constants are computed once, not typed in.
#pragma GCC target("sse4.1,pclmul")

#include <immintrin.h>

#include <cstring>

#include "crc64.h"

namespace vdcrypt {
namespace {

struct FoldConstants {
  __m128i by8;  // low: x^1087 mod P (for the high-degree half), high: x^1023 mod P
  __m128i by1;  // low: x^191, high: x^127
  FoldConstants()
      : by8(_mm_set_epi64x(static_cast<long long>(crc64_x_pow_mod(1023)), static_cast<long long>(crc64_x_pow_mod(1087)))),
        by1(_mm_set_epi64x(static_cast<long long>(crc64_x_pow_mod(127)), static_cast<long long>(crc64_x_pow_mod(191)))) {}
};

const FoldConstants& constants() {
  static const FoldConstants instance;
  return instance;
}

inline __m128i fold(__m128i lane, __m128i k, __m128i next) {
  const __m128i hi = _mm_clmulepi64_si128(lane, k, 0x00);  // lane's low quadword (high degrees) x k.low
  const __m128i lo = _mm_clmulepi64_si128(lane, k, 0x11);  // lane's high quadword x k.high
  return _mm_xor_si128(_mm_xor_si128(hi, lo), next);
}

inline __m128i load(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

}  // namespace

uint64_t crc64_fold_pclmul(uint64_t state, const uint8_t* data, size_t blocks) {
  if (blocks == 0) return state;
  const FoldConstants& k = constants();
  __m128i lane[8];
  for (int i = 0; i < 8; ++i) lane[i] = load(data + 16 * i);
  lane[0] = _mm_xor_si128(lane[0], _mm_cvtsi64_si128(static_cast<long long>(state)));
  data += kFoldBlockBytes;
  for (size_t b = 1; b < blocks; ++b, data += kFoldBlockBytes) {
    for (int i = 0; i < 8; ++i) lane[i] = fold(lane[i], k.by8, load(data + 16 * i));
  }
  alignas(16) uint8_t lanes[8 * 16];
  for (int i = 0; i < 8; ++i) _mm_store_si128(reinterpret_cast<__m128i*>(lanes + 16 * i), lane[i]);
  return crc64_join_lanes(lanes, 8);
}

uint64_t crc64_join_lanes(const uint8_t* lanes, size_t count) {
  const FoldConstants& k = constants();
  __m128i acc = load(lanes);
  for (size_t i = 1; i < count; ++i) acc = fold(acc, k.by1, load(lanes + 16 * i));
  uint8_t last[16];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(last), acc);
  return crc64_tables(0, last, sizeof last);
}

}  // namespace vdcrypt
