// AES-256-XTS with 128-bit AES-NI (IEEE Std 1619-2007; NIST SP 800-38E).
//
// Eight blocks are kept in flight so the AES unit's latency is hidden; the starting tweaks of up to eight
// sectors are encrypted together for the same reason. Also provides the AES-NI key expansion shared with the
// VAES path.
#pragma GCC target("sse4.1,aes,pclmul")

#include <immintrin.h>

#include <cstring>

#include "xts.h"

namespace vdcrypt {
namespace {

constexpr int kLanes = 8;          // blocks in flight
constexpr size_t kTweakBatch = 8;  // sector tweaks encrypted together

// One step of the AES-256 key schedule for the even round keys (FIPS 197 section 5.2): `prev` is round key
// i-2 and `assist` the AESKEYGENASSIST output on round key i-1.
inline __m128i schedule_even(__m128i prev, __m128i assist) {
  assist = _mm_shuffle_epi32(assist, 0xff);
  prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
  prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
  prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
  return _mm_xor_si128(prev, assist);
}

// Odd round keys use SubWord without RotWord and no round constant.
inline __m128i schedule_odd(__m128i prev, __m128i assist) {
  assist = _mm_shuffle_epi32(assist, 0xaa);
  prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
  prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
  prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
  return _mm_xor_si128(prev, assist);
}

void expand_aes256(const uint8_t key[kAes256KeyBytes], __m128i rk[kAes256Rounds + 1]) {
  rk[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
  rk[1] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + 16));
#define VDCRYPT_KEY_STEP(i, rcon)                                                  \
  rk[i] = schedule_even(rk[(i)-2], _mm_aeskeygenassist_si128(rk[(i)-1], rcon));    \
  rk[(i) + 1] = schedule_odd(rk[(i)-1], _mm_aeskeygenassist_si128(rk[i], 0x00));
  VDCRYPT_KEY_STEP(2, 0x01)
  VDCRYPT_KEY_STEP(4, 0x02)
  VDCRYPT_KEY_STEP(6, 0x04)
  VDCRYPT_KEY_STEP(8, 0x08)
  VDCRYPT_KEY_STEP(10, 0x10)
  VDCRYPT_KEY_STEP(12, 0x20)
#undef VDCRYPT_KEY_STEP
  rk[14] = schedule_even(rk[12], _mm_aeskeygenassist_si128(rk[13], 0x40));
}

inline __m128i load(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline void store(uint8_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }

// Tweak times x in GF(2^128): shift the 128-bit value left by one and fold the carry back as 0x87.
inline __m128i mul_x(__m128i t) {
  const __m128i poly = _mm_set_epi32(1, 1, 1, 0x87);
  __m128i carries = _mm_srai_epi32(t, 31);            // each 32-bit lane's top bit, smeared
  carries = _mm_shuffle_epi32(carries, 0x93);          // move each to the next lane up (lane 3 wraps to 0)
  return _mm_xor_si128(_mm_slli_epi32(t, 1), _mm_and_si128(carries, poly));
}

struct RoundKeys {
  __m128i k[kAes256Rounds + 1];
};

inline RoundKeys load_keys(const uint8_t (*rk)[kAesBlockBytes]) {
  RoundKeys out;
  for (int r = 0; r <= kAes256Rounds; ++r) out.k[r] = load(rk[r]);
  return out;
}

inline __m128i encrypt1(const RoundKeys& k, __m128i b) {
  b = _mm_xor_si128(b, k.k[0]);
  for (int r = 1; r < kAes256Rounds; ++r) b = _mm_aesenc_si128(b, k.k[r]);
  return _mm_aesenclast_si128(b, k.k[kAes256Rounds]);
}

inline __m128i decrypt1(const RoundKeys& k, __m128i b) {
  b = _mm_xor_si128(b, k.k[0]);
  for (int r = 1; r < kAes256Rounds; ++r) b = _mm_aesdec_si128(b, k.k[r]);
  return _mm_aesdeclast_si128(b, k.k[kAes256Rounds]);
}

// Encrypt the starting tweaks of `n` <= kTweakBatch sectors, first .. first + n - 1, with key2.
void encrypt_sector_tweaks(const RoundKeys& k2, uint64_t first, size_t n, __m128i* out) {
  __m128i t[kTweakBatch];
  for (size_t i = 0; i < kTweakBatch; ++i) t[i] = _mm_set_epi64x(0, static_cast<long long>(first + i));
  for (size_t i = 0; i < kTweakBatch; ++i) t[i] = _mm_xor_si128(t[i], k2.k[0]);
  for (int r = 1; r < kAes256Rounds; ++r) {
    for (size_t i = 0; i < kTweakBatch; ++i) t[i] = _mm_aesenc_si128(t[i], k2.k[r]);
  }
  for (size_t i = 0; i < n; ++i) out[i] = _mm_aesenclast_si128(t[i], k2.k[kAes256Rounds]);
}

template <bool kEncrypt>
void crypt_sector(const RoundKeys& k1, __m128i tweak, const uint8_t* src, uint8_t* dst, size_t bytes) {
  // The last round's key is folded with the tweak: AESENCLAST(x, K14 ^ T) == AESENCLAST(x, K14) ^ T.
  const __m128i last = k1.k[kAes256Rounds];
  for (size_t off = 0; off < bytes; off += kLanes * kAesBlockBytes) {
    __m128i t[kLanes];
    __m128i b[kLanes];
    t[0] = tweak;
    for (int i = 1; i < kLanes; ++i) t[i] = mul_x(t[i - 1]);
    tweak = mul_x(t[kLanes - 1]);
    for (int i = 0; i < kLanes; ++i) {
      b[i] = _mm_xor_si128(load(src + off + i * kAesBlockBytes), _mm_xor_si128(t[i], k1.k[0]));
    }
    for (int r = 1; r < kAes256Rounds; ++r) {
      const __m128i rk = k1.k[r];
      for (int i = 0; i < kLanes; ++i) b[i] = kEncrypt ? _mm_aesenc_si128(b[i], rk) : _mm_aesdec_si128(b[i], rk);
    }
    for (int i = 0; i < kLanes; ++i) {
      const __m128i lk = _mm_xor_si128(last, t[i]);
      b[i] = kEncrypt ? _mm_aesenclast_si128(b[i], lk) : _mm_aesdeclast_si128(b[i], lk);
      store(dst + off + i * kAesBlockBytes, b[i]);
    }
  }
}

void aesni_sectors(const KeySchedule& ks, Direction dir, const uint8_t* src, uint8_t* dst, size_t count,
                   size_t sector_bytes, uint64_t first) {
  const RoundKeys k1 = load_keys(dir == Direction::kEncrypt ? ks.enc1 : ks.dec1);
  const RoundKeys k2 = load_keys(ks.enc2);
  __m128i tweaks[kTweakBatch];
  for (size_t done = 0; done < count;) {
    const size_t n = count - done < kTweakBatch ? count - done : kTweakBatch;
    encrypt_sector_tweaks(k2, first + done, n, tweaks);
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

void block_enc_key1(const KeySchedule& ks, const uint8_t in[16], uint8_t out[16]) {
  store(out, encrypt1(load_keys(ks.enc1), load(in)));
}
void block_dec_key1(const KeySchedule& ks, const uint8_t in[16], uint8_t out[16]) {
  store(out, decrypt1(load_keys(ks.dec1), load(in)));
}
void block_enc_key2(const KeySchedule& ks, const uint8_t in[16], uint8_t out[16]) {
  store(out, encrypt1(load_keys(ks.enc2), load(in)));
}

bool aesni_available(const CpuFeatures& f) { return f.aesni && f.sse41; }

}  // namespace

void aesni_expand_key(const uint8_t key[kXtsKeyBytes], KeySchedule* ks) {
  __m128i rk[kAes256Rounds + 1];
  expand_aes256(key, rk);
  for (int r = 0; r <= kAes256Rounds; ++r) store(ks->enc1[r], rk[r]);
  store(ks->dec1[0], rk[kAes256Rounds]);
  for (int r = 1; r < kAes256Rounds; ++r) store(ks->dec1[r], _mm_aesimc_si128(rk[kAes256Rounds - r]));
  store(ks->dec1[kAes256Rounds], rk[0]);
  expand_aes256(key + kAes256KeyBytes, rk);
  for (int r = 0; r <= kAes256Rounds; ++r) store(ks->enc2[r], rk[r]);
  secure_wipe(rk, sizeof(rk));
  std::memcpy(ks->raw, key, kXtsKeyBytes);
}

const XtsImpl kImplAesni = {
    "aesni", aesni_available, aesni_expand_key, aesni_sectors, block_enc_key1, block_dec_key1, block_enc_key2, nullptr,
};

}  // namespace vdcrypt
