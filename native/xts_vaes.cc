// AES-256-XTS with VAES + VPCLMULQDQ on 256-bit AVX2 vectors (IEEE Std 1619-2007; NIST SP 800-38E).
//
// Each ymm register holds two consecutive blocks. A group of eight registers (16 blocks, 256 bytes) is kept in
// flight so the AES units' latency is hidden. Tweaks advance by whole groups: the tweak pair of register i
// in the next group is this group's pair times x^16, computed per 128-bit lane with one carry-less multiply
// (shift the lane left by two bytes, multiply the two bytes shifted out by 0x87 and fold them back in).
// The first round key is folded into the tweak and the last round key is XORed with the tweak, so the
// whitening XORs cost nothing extra. Starting tweaks of several sectors are encrypted together.
#pragma GCC target("avx2,aes,pclmul,vaes,vpclmulqdq")

#include <immintrin.h>

#include "xts.h"

namespace vdcrypt {
namespace {

constexpr int kGroupVectors = 8;                          // ymm registers in flight
constexpr size_t kVectorBytes = 2 * kAesBlockBytes;       // two blocks per ymm
constexpr size_t kGroupBytes = kGroupVectors * kVectorBytes;
constexpr size_t kTweakBatch = 8;                         // sector tweaks encrypted together

struct WideKeys {
  __m256i k[kAes256Rounds + 1];
};

inline WideKeys broadcast_keys(const uint8_t (*rk)[kAesBlockBytes]) {
  WideKeys out;
  for (int r = 0; r <= kAes256Rounds; ++r) {
    out.k[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rk[r])));
  }
  return out;
}

inline __m128i mul_x(__m128i t) {
  const __m128i poly = _mm_set_epi32(1, 1, 1, 0x87);
  __m128i carries = _mm_srai_epi32(t, 31);
  carries = _mm_shuffle_epi32(carries, 0x93);
  return _mm_xor_si128(_mm_slli_epi32(t, 1), _mm_and_si128(carries, poly));
}

// Each 128-bit lane times x^16: (T << 16) ^ clmul(T >> 112, 0x87). The product has at most 23 bits, so it
// needs no further reduction.
inline __m256i mul_x16(__m256i t, __m256i poly) {
  const __m256i top = _mm256_bsrli_epi128(t, 14);
  return _mm256_xor_si256(_mm256_bslli_epi128(t, 2), _mm256_clmulepi64_epi128(top, poly, 0x00));
}

// Encrypt the starting tweaks of n <= kTweakBatch sectors with key2, two per register.
void encrypt_sector_tweaks(const WideKeys& k2, uint64_t first, size_t n, __m128i* out) {
  constexpr size_t kPairs = kTweakBatch / 2;
  __m256i t[kPairs];
  for (size_t i = 0; i < kPairs; ++i) {
    const long long a = static_cast<long long>(first + 2 * i);
    const long long b = static_cast<long long>(first + 2 * i + 1);
    t[i] = _mm256_xor_si256(_mm256_set_epi64x(0, b, 0, a), k2.k[0]);
  }
  for (int r = 1; r < kAes256Rounds; ++r) {
    for (size_t i = 0; i < kPairs; ++i) t[i] = _mm256_aesenc_epi128(t[i], k2.k[r]);
  }
  for (size_t i = 0; i < kPairs; ++i) {
    t[i] = _mm256_aesenclast_epi128(t[i], k2.k[kAes256Rounds]);
    if (2 * i < n) out[2 * i] = _mm256_castsi256_si128(t[i]);
    if (2 * i + 1 < n) out[2 * i + 1] = _mm256_extracti128_si256(t[i], 1);
  }
}

template <bool kEncrypt>
void crypt_sector(const WideKeys& k1, __m128i tweak, const uint8_t* src, uint8_t* dst, size_t bytes) {
  const __m256i poly = _mm256_set_epi64x(0, 0x87, 0, 0x87);
  // Tweak pairs for the first group: register i holds T * x^(2i) and T * x^(2i+1).
  __m256i t[kGroupVectors];
  {
    __m128i single[2 * kGroupVectors];
    single[0] = tweak;
    for (int i = 1; i < 2 * kGroupVectors; ++i) single[i] = mul_x(single[i - 1]);
    for (int i = 0; i < kGroupVectors; ++i) t[i] = _mm256_set_m128i(single[2 * i + 1], single[2 * i]);
  }
  for (size_t off = 0; off < bytes; off += kGroupBytes) {
    __m256i b[kGroupVectors];
    for (int i = 0; i < kGroupVectors; ++i) {
      const __m256i in = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + off + i * kVectorBytes));
      b[i] = _mm256_xor_si256(in, _mm256_xor_si256(t[i], k1.k[0]));
    }
    for (int r = 1; r < kAes256Rounds; ++r) {
      const __m256i rk = k1.k[r];
      for (int i = 0; i < kGroupVectors; ++i) {
        b[i] = kEncrypt ? _mm256_aesenc_epi128(b[i], rk) : _mm256_aesdec_epi128(b[i], rk);
      }
    }
    for (int i = 0; i < kGroupVectors; ++i) {
      const __m256i lk = _mm256_xor_si256(k1.k[kAes256Rounds], t[i]);
      b[i] = kEncrypt ? _mm256_aesenclast_epi128(b[i], lk) : _mm256_aesdeclast_epi128(b[i], lk);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + off + i * kVectorBytes), b[i]);
      t[i] = mul_x16(t[i], poly);
    }
  }
}

void vaes_sectors(const KeySchedule& ks, Direction dir, const uint8_t* src, uint8_t* dst, size_t count,
                  size_t sector_bytes, uint64_t first) {
  const WideKeys k1 = broadcast_keys(dir == Direction::kEncrypt ? ks.enc1 : ks.dec1);
  __m128i tweaks[kTweakBatch];
  for (size_t done = 0; done < count;) {
    const size_t n = count - done < kTweakBatch ? count - done : kTweakBatch;
    {
      const WideKeys k2 = broadcast_keys(ks.enc2);
      encrypt_sector_tweaks(k2, first + done, n, tweaks);
    }
    for (size_t i = 0; i < n; ++i) {
      const size_t off = (done + i) * sector_bytes;
      if (dir == Direction::kEncrypt) {
        crypt_sector<true>(k1, tweaks[i], src + off, dst + off, sector_bytes);
      } else {
        crypt_sector<false>(k1, tweaks[i], src + off, dst + off, sector_bytes);
      }
    }
    done += n;
  }
}

bool vaes_available(const CpuFeatures& f) {
  return f.aesni && f.pclmulqdq && f.avx && f.avx2 && f.vaes && f.vpclmulqdq;
}

}  // namespace

// The single-block primitives are the AES-NI ones: ciphertext stealing is not on the hot path.
const XtsImpl kImplVaes = {
    "vaes",
    vaes_available,
    aesni_expand_key,
    vaes_sectors,
    kImplAesni.encrypt_block_key1,
    kImplAesni.decrypt_block_key1,
    kImplAesni.encrypt_block_key2,
};

}  // namespace vdcrypt
