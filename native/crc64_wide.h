// The 512-bit CRC-64/NVME folding step (crc64_vpclmul512.cc explains it), shared by that file's folding loop
// and the fused seal of xts_vaes512.cc. Include only after a `#pragma GCC target` that enables AVX-512 F/BW/VL
// and VPCLMULQDQ, and after <immintrin.h>; everything here has internal linkage.
#pragma once

#include "crc64.h"

namespace vdcrypt {
namespace {

// The step constant in each 128-bit lane: low quadword x^2111 mod P, high quadword x^2047 mod P.
inline __m512i crc64_wide_constant() {
  const uint64_t* k = crc64_wide_fold_constants();
  return _mm512_broadcast_i32x4(_mm_set_epi64x(static_cast<long long>(k[1]), static_cast<long long>(k[0])));
}

// The first 256 bytes of a message as lanes (four registers, message order), with the running state (crc64_nvme's
// inverted register) XORed into the low quadword of the first lane.
inline void crc64_wide_start(__m512i v[4], const __m512i b[4], uint64_t state) {
  v[0] = _mm512_xor_si512(b[0], _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, static_cast<long long>(state)));
  for (int j = 1; j < 4; ++j) v[j] = b[j];
}

// Carry each lane of v forward by 2048 bits and add the next 256 bytes of the message (four registers).
inline void crc64_wide_fold(__m512i v[4], __m512i k, const __m512i next[4]) {
  for (int j = 0; j < 4; ++j) {
    v[j] = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(v[j], k, 0x00), _mm512_clmulepi64_epi128(v[j], k, 0x11),
                                     next[j], 0x96);  // hi ^ lo ^ next
  }
}

}  // namespace
}  // namespace vdcrypt
