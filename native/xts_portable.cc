// AES-256-XTS for CPUs without AES-NI (IEEE Std 1619-2007; NIST SP 800-38E).
//
// The AES block function comes from the OpenSSL that Node itself carries (EVP, AES-256-ECB), which is
// constant-time on every CPU OpenSSL supports (AES-NI, vector-permute AES, ARMv8 crypto extensions); no
// lookup-table AES is written here. The XTS layer (tweak encryption, GF(2^128) doubling, whitening) is our
// own portable C++: the tweaks of a whole sector are computed first, the sector is whitened, encrypted with
// one ECB call, and whitened again.
#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "xts.h"

namespace vdcrypt {
namespace {

EVP_CIPHER* ecb_cipher() {
  static EVP_CIPHER* cipher = nullptr;
  static std::once_flag once;
  std::call_once(once, [] { cipher = EVP_CIPHER_fetch(nullptr, "AES-256-ECB", nullptr); });
  return cipher;
}

// An ECB context for one half of the key, freed and wiped by OpenSSL on destruction.
class EcbContext {
 public:
  EcbContext(const uint8_t* key, bool encrypt) : ctx_(EVP_CIPHER_CTX_new()) {
    if (ctx_ == nullptr || ecb_cipher() == nullptr) return;
    const int ok = encrypt ? EVP_EncryptInit_ex2(ctx_, ecb_cipher(), key, nullptr, nullptr)
                           : EVP_DecryptInit_ex2(ctx_, ecb_cipher(), key, nullptr, nullptr);
    ready_ = ok == 1 && EVP_CIPHER_CTX_set_padding(ctx_, 0) == 1;
  }
  ~EcbContext() { EVP_CIPHER_CTX_free(ctx_); }
  EcbContext(const EcbContext&) = delete;
  EcbContext& operator=(const EcbContext&) = delete;

  // Transform n bytes (a multiple of 16) from in to out; in == out is allowed.
  bool run(const uint8_t* in, uint8_t* out, size_t n) {
    if (!ready_) return false;
    int produced = 0;
    return EVP_CipherUpdate(ctx_, out, &produced, in, static_cast<int>(n)) == 1 &&
           static_cast<size_t>(produced) == n;
  }

 private:
  EVP_CIPHER_CTX* ctx_;
  bool ready_ = false;
};

inline void load_le128(const uint8_t* p, uint64_t& lo, uint64_t& hi) {
  lo = 0;
  hi = 0;
  for (int i = 7; i >= 0; --i) {
    lo = (lo << 8) | p[i];
    hi = (hi << 8) | p[8 + i];
  }
}

inline void store_le128(uint8_t* p, uint64_t lo, uint64_t hi) {
  for (int i = 0; i < 8; ++i) {
    p[i] = static_cast<uint8_t>(lo >> (8 * i));
    p[8 + i] = static_cast<uint8_t>(hi >> (8 * i));
  }
}

// OpenSSL failing on a fixed-size ECB update means its library is unusable; there is no safe way to go on.
[[noreturn]] void openssl_failed() {
  std::abort();
}

void portable_sectors(const KeySchedule& ks, Direction dir, const uint8_t* src, uint8_t* dst, size_t count,
                      size_t sector_bytes, uint64_t first) {
  EcbContext data(ks.raw, dir == Direction::kEncrypt);
  EcbContext tweak_key(ks.raw + kAes256KeyBytes, true);
  alignas(16) uint8_t tweaks[kMaxSectorBytes];
  alignas(16) uint8_t work[kMaxSectorBytes];
  for (size_t s = 0; s < count; ++s) {
    store_le128(tweaks, first + s, 0);
    if (!tweak_key.run(tweaks, tweaks, kAesBlockBytes)) openssl_failed();
    uint64_t lo, hi;
    load_le128(tweaks, lo, hi);
    for (size_t b = 1; b < sector_bytes / kAesBlockBytes; ++b) {
      gf128_mul_x(lo, hi);
      store_le128(tweaks + b * kAesBlockBytes, lo, hi);
    }
    const uint8_t* in = src + s * sector_bytes;
    uint8_t* out = dst + s * sector_bytes;
    for (size_t i = 0; i < sector_bytes; ++i) work[i] = in[i] ^ tweaks[i];
    if (!data.run(work, work, sector_bytes)) openssl_failed();
    for (size_t i = 0; i < sector_bytes; ++i) out[i] = work[i] ^ tweaks[i];
  }
  secure_wipe(work, sizeof(work));
  secure_wipe(tweaks, sizeof(tweaks));
}

void one_block(const uint8_t* key, bool encrypt, const uint8_t in[16], uint8_t out[16]) {
  EcbContext ctx(key, encrypt);
  if (!ctx.run(in, out, kAesBlockBytes)) openssl_failed();
}

void block_enc_key1(const KeySchedule& ks, const uint8_t in[16], uint8_t out[16]) {
  one_block(ks.raw, true, in, out);
}
void block_dec_key1(const KeySchedule& ks, const uint8_t in[16], uint8_t out[16]) {
  one_block(ks.raw, false, in, out);
}
void block_enc_key2(const KeySchedule& ks, const uint8_t in[16], uint8_t out[16]) {
  one_block(ks.raw + kAes256KeyBytes, true, in, out);
}

// The round-key fields stay zero: this path hands the raw key to OpenSSL.
void portable_expand_key(const uint8_t key[kXtsKeyBytes], KeySchedule* ks) {
  std::memset(ks, 0, sizeof(*ks));
  std::memcpy(ks->raw, key, kXtsKeyBytes);
}

bool portable_available(const CpuFeatures&) { return ecb_cipher() != nullptr; }

}  // namespace

const XtsImpl kImplPortable = {
    "portable",     portable_available, portable_expand_key, portable_sectors,
    block_enc_key1, block_dec_key1,     block_enc_key2, nullptr,
};

}  // namespace vdcrypt
