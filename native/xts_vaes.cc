// AES-256-XTS with VAES + VPCLMULQDQ on 256-bit AVX2 vectors (IEEE Std 1619-2007; NIST SP 800-38E).
//
// Each ymm register holds two consecutive blocks. A group of eight registers (16 blocks, 256 bytes) is kept in
// flight so the AES units' latency is hidden. The sixteen tweak registers of a 512-byte sector are computed
// one sector ahead into memory (a software pipeline: the tweak chain never stalls the AES units): four come
// from T by per-lane variable shifts plus one carry-less multiply, the other twelve from those by byte shifts
// (times x^8, x^16, x^24), each folding the bytes shifted out back in with one multiply by 0x87. The first
// round key is folded into the tweak and the last round key is XORed with the tweak, so the whitening XORs
// cost nothing extra. Starting tweaks of several sectors are encrypted together.
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

// Lane j of `t` times x^(count of lane j), each count in [0, 63] (see xts_vaes512.cc for the derivation).
inline __m256i mul_x_lanes(__m256i t, __m256i left, __m256i right, __m256i poly) {
  const __m256i shifted = _mm256_sllv_epi64(t, left);
  const __m256i spill = _mm256_shuffle_epi32(_mm256_srlv_epi64(t, right), 0x4e);
  const __m256i crossing = _mm256_blend_epi32(_mm256_setzero_si256(), spill, 0xcc);
  const __m256i reduced = _mm256_clmulepi64_epi128(spill, poly, 0x00);
  return _mm256_xor_si256(_mm256_xor_si256(shifted, crossing), reduced);
}

// Each 128-bit lane times x^(8 * kBytes), kBytes <= 7.
template <int kBytes>
inline __m256i mul_x_bytes(__m256i t, __m256i poly) {
  const __m256i top = _mm256_bsrli_epi128(t, 16 - kBytes);
  return _mm256_xor_si256(_mm256_bslli_epi128(t, kBytes), _mm256_clmulepi64_epi128(top, poly, 0x00));
}

// The sixteen tweak registers of a sector's first 512 bytes: register i holds T * x^(2i) and T * x^(2i+1).
// Registers 0-3 come from T by per-lane shifts; register 4j + i is register i times x^(8j).
inline void sector_tweaks(__m128i tweak, __m256i* out) {
  const __m256i poly = _mm256_set_epi64x(0, 0x87, 0, 0x87);
  const __m256i sixty_four = _mm256_set1_epi64x(64);
  const __m256i base = _mm256_broadcastsi128_si256(tweak);
  __m256i first[4];
  for (int i = 0; i < 4; ++i) {
    const __m256i counts = _mm256_set_epi64x(2 * i + 1, 2 * i + 1, 2 * i, 2 * i);
    first[i] = mul_x_lanes(base, counts, _mm256_sub_epi64(sixty_four, counts), poly);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_store_si256(&out[i], first[i]);
    _mm256_store_si256(&out[4 + i], mul_x_bytes<1>(first[i], poly));
    _mm256_store_si256(&out[8 + i], mul_x_bytes<2>(first[i], poly));
    _mm256_store_si256(&out[12 + i], mul_x_bytes<3>(first[i], poly));
  }
}

constexpr int kSectorVectors = 2 * kGroupVectors;  // tweak registers computed ahead: one 512-byte sector

// One sector whose first sixteen tweak registers were computed ahead into `tw`. Later 512-byte parts of a
// 4096-byte sector use the same registers times x^32.
template <bool kEncrypt>
void crypt_sector(const WideKeys& k1, const __m256i* tw, const uint8_t* src, uint8_t* dst, size_t bytes) {
  const __m256i poly = _mm256_set_epi64x(0, 0x87, 0, 0x87);
  alignas(32) __m256i t[kSectorVectors];
  for (int i = 0; i < kSectorVectors; ++i) t[i] = _mm256_load_si256(&tw[i]);
  for (size_t off = 0; off < bytes; off += kGroupBytes) {
    const int half = static_cast<int>((off / kGroupBytes) % 2) * kGroupVectors;
    __m256i b[kGroupVectors];
    for (int i = 0; i < kGroupVectors; ++i) {
      const __m256i in = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + off + i * kVectorBytes));
      b[i] = _mm256_xor_si256(in, _mm256_xor_si256(t[half + i], k1.k[0]));
    }
    for (int r = 1; r < kAes256Rounds; ++r) {
      const __m256i rk = k1.k[r];
      for (int i = 0; i < kGroupVectors; ++i) {
        b[i] = kEncrypt ? _mm256_aesenc_epi128(b[i], rk) : _mm256_aesdec_epi128(b[i], rk);
      }
    }
    for (int i = 0; i < kGroupVectors; ++i) {
      const __m256i lk = _mm256_xor_si256(k1.k[kAes256Rounds], t[half + i]);
      b[i] = kEncrypt ? _mm256_aesenclast_epi128(b[i], lk) : _mm256_aesdeclast_epi128(b[i], lk);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + off + i * kVectorBytes), b[i]);
    }
    if (half != 0 && off + kGroupBytes < bytes) {
      for (int i = 0; i < kSectorVectors; ++i) t[i] = mul_x_bytes<4>(t[i], poly);
    }
  }
}

template <bool kEncrypt>
void crypt_sectors(const KeySchedule& ks, const uint8_t* src, uint8_t* dst, size_t count, size_t sector_bytes,
                   uint64_t first) {
  const WideKeys k1 = broadcast_keys(kEncrypt ? ks.enc1 : ks.dec1);
  // Software pipeline, as in the AVX-512 path: starting tweaks a batch ahead, tweak registers a sector ahead.
  __m128i batch[kTweakBatch];
  alignas(32) __m256i tw[2][kSectorVectors];
  size_t slot = 0;
  bool have_next = false;
  for (size_t done = 0; done < count;) {
    const size_t n = count - done < kTweakBatch ? count - done : kTweakBatch;
    {
      const WideKeys k2 = broadcast_keys(ks.enc2);
      encrypt_sector_tweaks(k2, first + done, n, batch);
    }
    if (!have_next) sector_tweaks(batch[0], tw[slot]);
    for (size_t i = 0; i < n; ++i) {
      have_next = i + 1 < n;
      if (have_next) sector_tweaks(batch[i + 1], tw[slot ^ 1]);
      const size_t off = (done + i) * sector_bytes;
      crypt_sector<kEncrypt>(k1, tw[slot], src + off, dst + off, sector_bytes);
      slot ^= 1;
    }
    done += n;
  }
}

void vaes_sectors(const KeySchedule& ks, Direction dir, const uint8_t* src, uint8_t* dst, size_t count,
                  size_t sector_bytes, uint64_t first) {
  if (dir == Direction::kEncrypt) {
    crypt_sectors<true>(ks, src, dst, count, sector_bytes, first);
  } else {
    crypt_sectors<false>(ks, src, dst, count, sector_bytes, first);
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
    nullptr,
};

}  // namespace vdcrypt
