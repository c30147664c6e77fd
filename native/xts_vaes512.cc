// AES-256-XTS with VAES + VPCLMULQDQ on 512-bit AVX-512 vectors (IEEE Std 1619-2007; NIST SP 800-38E).
//
// Each zmm register holds four consecutive blocks, so eight registers cover one 512-byte sector: 32 blocks in
// flight, with all 15 round keys resident in the other registers (AVX-512 has 32). Tweaks:
//   - the starting tweaks T of eight sectors are encrypted together (independent chains hide the latency);
//   - register 0 holds T*x^0..3 and register 1 holds T*x^4..7, each made from T by per-lane variable shifts
//     and one carry-less multiply (no serial chain of doublings);
//   - register 2j (2j+1) is register 0 (1) times x^(8j): a byte shift of each 128-bit lane plus one
//     carry-less multiply of the bytes shifted out by 0x87 -- all independent of each other;
//   - the next 512 bytes of a 4096-byte sector use the same registers times x^32.
// The first round key is folded into the tweak and the last round key XORed with it, as in the AVX2 path.
// Tweak work is a serial chain per sector; it is software-pipelined one sector ahead (the next sector's eight
// tweak registers are computed into memory before this sector's rounds), which took 512-byte sectors from
// about 0.33 to 0.26 cycles/byte here (4096-byte sectors: 0.23; the AES unit's limit is 0.22).
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,aes,pclmul,vaes,vpclmulqdq")
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as the unused merge source, which -Wuninitialized
// reports from inside the system header once inlined here. The values are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include "crc64_wide.h"
#include "xts.h"

namespace vdcrypt {
namespace {

constexpr int kGroupVectors = 8;                         // zmm registers per group
constexpr size_t kVectorBytes = 4 * kAesBlockBytes;      // four blocks per zmm
constexpr size_t kGroupBytes = kGroupVectors * kVectorBytes;  // 512 bytes: one small sector
// How far ahead of the sector being sealed its source is prefetched, a sector's eight lines at a time. The seal
// streams its source from memory and its ciphertext back with non-temporal stores; spreading the prefetches
// over the AES rounds keeps about 16 KiB of loads in flight without the bursts of a block-wide prefetch, and
// a seal of 1 GiB took 0.090-0.097 s against 0.108-0.117 s with the caller prefetching 16 KiB blocks (fastest
// of seven runs, three times each; 4 MiB calls, one at a time). A prefetch is only a hint: one past the end of
// src reads nothing and cannot fault, so its address is formed as an integer.
constexpr size_t kSealPrefetchBytes = 16384;
constexpr size_t kTweakBatch = 8;                        // sector tweaks encrypted together

struct WideKeys {
  __m512i k[kAes256Rounds + 1];
};

inline WideKeys broadcast_keys(const uint8_t (*rk)[kAesBlockBytes]) {
  WideKeys out;
  for (int r = 0; r <= kAes256Rounds; ++r) {
    out.k[r] = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rk[r])));
  }
  return out;
}

// Lane j of `t` times x^(count of lane j), each count in [0, 63]: shift each 128-bit lane left (the bits that
// cross from the low to the high quadword come from a per-quadword right shift and a quadword swap) and fold
// the bits shifted out of the top back in with one carry-less multiply by 0x87 (at most 70 bits: no overflow).
inline __m512i mul_x_lanes(__m512i t, __m512i left, __m512i right, __m512i poly) {
  const __m512i shifted = _mm512_sllv_epi64(t, left);
  // Swap the quadwords of each lane: low = bits leaving the top (to reduce), high = bits crossing into it.
  const __m512i spill = _mm512_shuffle_epi32(_mm512_srlv_epi64(t, right), static_cast<_MM_PERM_ENUM>(0x4e));
  const __m512i crossing = _mm512_maskz_mov_epi64(0xaa, spill);
  const __m512i reduced = _mm512_clmulepi64_epi128(spill, poly, 0x00);
  return _mm512_ternarylogic_epi64(shifted, crossing, reduced, 0x96);
}

// Each 128-bit lane times x^(8 * kBytes), kBytes <= 7: the product of the shifted-out bytes and 0x87 has at
// most 8 * kBytes + 7 < 64 bits, so it needs no further reduction.
template <int kBytes>
inline __m512i mul_x_bytes(__m512i t, __m512i poly) {
  const __m512i top = _mm512_bsrli_epi128(t, 16 - kBytes);
  return _mm512_xor_si512(_mm512_bslli_epi128(t, kBytes), _mm512_clmulepi64_epi128(top, poly, 0x00));
}

// Encrypt the starting tweaks of n <= kTweakBatch sectors with key2, four per register; only the registers
// that hold a wanted tweak are computed (a single-sector call pays for one).
void encrypt_sector_tweaks(const WideKeys& k2, uint64_t first, size_t n, __m128i* out) {
  constexpr size_t kQuads = kTweakBatch / 4;
  const size_t quads = (n + 3) / 4;
  __m512i t[kQuads];
  for (size_t i = 0; i < kQuads; ++i) {
    const uint64_t s = first + 4 * i;
    const __m512i sectors = _mm512_set_epi64(0, static_cast<long long>(s + 3), 0, static_cast<long long>(s + 2), 0,
                                             static_cast<long long>(s + 1), 0, static_cast<long long>(s));
    t[i] = _mm512_xor_si512(sectors, k2.k[0]);
  }
  if (quads == 1) {
    for (int r = 1; r < kAes256Rounds; ++r) t[0] = _mm512_aesenc_epi128(t[0], k2.k[r]);
  } else {
    for (int r = 1; r < kAes256Rounds; ++r) {
      for (size_t i = 0; i < kQuads; ++i) t[i] = _mm512_aesenc_epi128(t[i], k2.k[r]);
    }
  }
  alignas(64) __m128i all[kTweakBatch];
  for (size_t i = 0; i < quads; ++i) {
    _mm512_store_si512(reinterpret_cast<__m512i*>(&all[4 * i]), _mm512_aesenclast_epi128(t[i], k2.k[kAes256Rounds]));
  }
  for (size_t i = 0; i < n; ++i) out[i] = all[i];
}

// The eight tweak registers of a sector's first 512 bytes: register 0 holds T * x^(0..3), register 1
// T * x^(4..7) (each computed from T by per-lane shifts), register 2j (2j + 1) is register 0 (1) times x^(8j).
inline void sector_tweaks(__m128i tweak, __m512i* out) {
  const __m512i poly = _mm512_set_epi64(0, 0x87, 0, 0x87, 0, 0x87, 0, 0x87);
  const __m512i first4 = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i next4 = _mm512_set_epi64(7, 7, 6, 6, 5, 5, 4, 4);
  const __m512i sixty_four = _mm512_set1_epi64(64);
  const __m512i base = _mm512_broadcast_i32x4(tweak);
  const __m512i t0 = mul_x_lanes(base, first4, _mm512_sub_epi64(sixty_four, first4), poly);
  const __m512i t1 = mul_x_lanes(base, next4, _mm512_sub_epi64(sixty_four, next4), poly);
  _mm512_store_si512(&out[0], t0);
  _mm512_store_si512(&out[1], t1);
  _mm512_store_si512(&out[2], mul_x_bytes<1>(t0, poly));
  _mm512_store_si512(&out[3], mul_x_bytes<1>(t1, poly));
  _mm512_store_si512(&out[4], mul_x_bytes<2>(t0, poly));
  _mm512_store_si512(&out[5], mul_x_bytes<2>(t1, poly));
  _mm512_store_si512(&out[6], mul_x_bytes<3>(t0, poly));
  _mm512_store_si512(&out[7], mul_x_bytes<3>(t1, poly));
}

// What a seal call (kSeal) carries across sectors: the four CRC-64 folding registers (sixteen lanes,
// crc64_wide.h) and their step constant. Unused otherwise.
struct CrcLanes {
  __m512i v[4];
  __m512i k;
  bool started;
};

// Add 256 bytes of ciphertext (four registers, in message order) to the CRC lanes; the first 256 bytes of a run
// start them from crc64_nvme's all-ones state.
inline void crc_fold(CrcLanes& c, const __m512i* b) {
  if (c.started) {
    crc64_wide_fold(c.v, c.k, b);
  } else {
    crc64_wide_start(c.v, b, ~uint64_t{0});
    c.started = true;
  }
}

// One sector whose first eight tweak registers were computed ahead (sector_tweaks) into `tw`. kSeal: the
// output is also folded into `crc`, and kStream stores it with non-temporal stores (dst 64-byte aligned).
template <bool kEncrypt, bool kSeal = false, bool kStream = false>
void crypt_sector(const WideKeys& k1, const __m512i* tw, const uint8_t* src, uint8_t* dst, size_t bytes,
                  CrcLanes* crc = nullptr) {
  const __m512i poly = _mm512_set_epi64(0, 0x87, 0, 0x87, 0, 0x87, 0, 0x87);
  __m512i t[kGroupVectors];
  for (int i = 0; i < kGroupVectors; ++i) t[i] = _mm512_load_si512(&tw[i]);
  for (size_t off = 0; off < bytes; off += kGroupBytes) {
    __m512i b[kGroupVectors];
    if (kSeal) {
      const uintptr_t ahead = reinterpret_cast<uintptr_t>(src) + off + kSealPrefetchBytes;
      for (int i = 0; i < kGroupVectors; ++i) _mm_prefetch(reinterpret_cast<const char*>(ahead + i * kVectorBytes), _MM_HINT_T0);
    }
    for (int i = 0; i < kGroupVectors; ++i) {
      const __m512i in = _mm512_loadu_si512(src + off + i * kVectorBytes);
      b[i] = _mm512_ternarylogic_epi32(in, t[i], k1.k[0], 0x96);  // in ^ t ^ k0
    }
    for (int r = 1; r < kAes256Rounds; ++r) {
      for (int i = 0; i < kGroupVectors; ++i) {
        b[i] = kEncrypt ? _mm512_aesenc_epi128(b[i], k1.k[r]) : _mm512_aesdec_epi128(b[i], k1.k[r]);
      }
    }
    for (int i = 0; i < kGroupVectors; ++i) {
      const __m512i lk = _mm512_xor_si512(k1.k[kAes256Rounds], t[i]);
      b[i] = kEncrypt ? _mm512_aesenclast_epi128(b[i], lk) : _mm512_aesdeclast_epi128(b[i], lk);
      if (kStream) {
        _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + off + i * kVectorBytes), b[i]);
      } else {
        _mm512_storeu_si512(dst + off + i * kVectorBytes, b[i]);
      }
    }
    if (kSeal) {
      crc_fold(*crc, &b[0]);
      crc_fold(*crc, &b[4]);
    }
    if (off + kGroupBytes < bytes) {
      for (int i = 0; i < kGroupVectors; ++i) t[i] = mul_x_bytes<4>(t[i], poly);
    }
  }
}

template <bool kEncrypt, bool kSeal = false, bool kStream = false>
void crypt_sectors(const KeySchedule& ks, const uint8_t* src, uint8_t* dst, size_t count, size_t sector_bytes,
                   uint64_t first, CrcLanes* crc = nullptr) {
  const WideKeys k1 = broadcast_keys(kEncrypt ? ks.enc1 : ks.dec1);
  const WideKeys k2 = broadcast_keys(ks.enc2);
  // Two software pipelines: the next batch's starting tweaks are encrypted before this batch's sectors, and
  // the next sector's tweak registers are computed before this sector's rounds. Both are serial chains that
  // would otherwise stall the AES unit at every boundary.
  __m128i batches[2][kTweakBatch];
  alignas(64) __m512i tw[2][kGroupVectors];
  size_t n = count < kTweakBatch ? count : kTweakBatch;
  if (n == 0) return;
  encrypt_sector_tweaks(k2, first, n, batches[0]);
  sector_tweaks(batches[0][0], tw[0]);
  size_t slot = 0;
  for (size_t done = 0, cur = 0; done < count; cur ^= 1) {
    const size_t next_done = done + n;
    const size_t next_n = count - next_done < kTweakBatch ? count - next_done : kTweakBatch;
    if (next_n > 0) encrypt_sector_tweaks(k2, first + next_done, next_n, batches[cur ^ 1]);
    for (size_t i = 0; i < n; ++i) {
      if (i + 1 < n) {
        sector_tweaks(batches[cur][i + 1], tw[slot ^ 1]);
      } else if (next_n > 0) {
        sector_tweaks(batches[cur ^ 1][0], tw[slot ^ 1]);
      }
      const size_t off = (done + i) * sector_bytes;
      crypt_sector<kEncrypt, kSeal, kStream>(k1, tw[slot], src + off, dst + off, sector_bytes, crc);
      slot ^= 1;
    }
    done = next_done;
    n = next_n;
  }
}

void vaes512_sectors(const KeySchedule& ks, Direction dir, const uint8_t* src, uint8_t* dst, size_t count,
                     size_t sector_bytes, uint64_t first) {
  if (dir == Direction::kEncrypt) {
    crypt_sectors<true>(ks, src, dst, count, sector_bytes, first);
  } else {
    crypt_sectors<false>(ks, src, dst, count, sector_bytes, first);
  }
}

// Encrypt 512-byte sectors and fold their ciphertext into *crc in the same pass (XtsImpl::seal_sectors).
void vaes512_seal(const KeySchedule& ks, const uint8_t* src, uint8_t* dst, size_t count, uint64_t first, SealCrc* crc) {
  CrcLanes lanes;
  lanes.k = crc64_wide_constant();
  lanes.started = crc->started;
  for (int j = 0; j < 4; ++j) lanes.v[j] = _mm512_load_si512(crc->lanes + 64 * j);
  if ((reinterpret_cast<uintptr_t>(dst) & 63) == 0) {
    crypt_sectors<true, true, true>(ks, src, dst, count, kGroupBytes, first, &lanes);
    _mm_sfence();  // the non-temporal stores are visible before the caller hands dst on
  } else {
    crypt_sectors<true, true, false>(ks, src, dst, count, kGroupBytes, first, &lanes);
  }
  for (int j = 0; j < 4; ++j) _mm512_store_si512(crc->lanes + 64 * j, lanes.v[j]);
  crc->started = lanes.started;
}

bool vaes512_available(const CpuFeatures& f) {
  return f.aesni && f.pclmulqdq && f.avx2 && f.vaes && f.vpclmulqdq && f.avx512f && f.avx512bw && f.avx512vl;
}

}  // namespace

const XtsImpl kImplVaes512 = {
    "vaes512",
    vaes512_available,
    aesni_expand_key,
    vaes512_sectors,
    kImplAesni.encrypt_block_key1,
    kImplAesni.decrypt_block_key1,
    kImplAesni.encrypt_block_key2,
    vaes512_seal,
};

}  // namespace vdcrypt
