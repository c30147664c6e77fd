// CRC-64/NVME folding with VPCLMULQDQ on 512-bit registers: sixteen 128-bit lanes in four registers, 256 bytes
// per step, the same folding as crc64_pclmul.cc (read its header for the bit order) with each lane carried
// forward by 2048 bits: constants x^2111 (for a lane's high-degree half) and x^2047 mod P. The sixteen lanes are
// then joined by crc64_join_lanes (the 128-bit fold). About twice the 128-bit path's speed on data in cache.
#pragma GCC target("avx512f,avx512bw,avx512vl,sse4.1,pclmul,vpclmulqdq")
// GCC 12's own intrinsic headers trip these (the same as in xts_vaes512.cc).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include "crc64.h"

namespace vdcrypt {
namespace {

constexpr int kLanes = 16;  // 128-bit lanes per step

// Each 128-bit lane: low x^2111 mod P, high x^2047 mod P.
__m512i by16() {
  const uint64_t* k = crc64_wide_fold_constants();
  return _mm512_broadcast_i32x4(_mm_set_epi64x(static_cast<long long>(k[1]), static_cast<long long>(k[0])));
}

inline __m512i fold16(__m512i v, __m512i k, const uint8_t* next) {
  const __m512i hi = _mm512_clmulepi64_epi128(v, k, 0x00);
  const __m512i lo = _mm512_clmulepi64_epi128(v, k, 0x11);
  return _mm512_ternarylogic_epi64(hi, lo, _mm512_loadu_si512(next), 0x96);  // hi ^ lo ^ next
}

}  // namespace

uint64_t crc64_fold_vpclmul512(uint64_t state, const uint8_t* data, size_t blocks) {
  if (blocks == 0) return state;
  const __m512i k = by16();
  __m512i v0 = _mm512_loadu_si512(data);
  __m512i v1 = _mm512_loadu_si512(data + 64);
  __m512i v2 = _mm512_loadu_si512(data + 128);
  __m512i v3 = _mm512_loadu_si512(data + 192);
  v0 = _mm512_xor_si512(v0, _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, static_cast<long long>(state)));
  data += kWideFoldBlockBytes;
  for (size_t b = 1; b < blocks; ++b, data += kWideFoldBlockBytes) {
    v0 = fold16(v0, k, data);
    v1 = fold16(v1, k, data + 64);
    v2 = fold16(v2, k, data + 128);
    v3 = fold16(v3, k, data + 192);
  }
  alignas(64) uint8_t lanes[kLanes * 16];
  _mm512_store_si512(lanes, v0);
  _mm512_store_si512(lanes + 64, v1);
  _mm512_store_si512(lanes + 128, v2);
  _mm512_store_si512(lanes + 192, v3);
  return crc64_join_lanes(lanes, kLanes);
}

}  // namespace vdcrypt
