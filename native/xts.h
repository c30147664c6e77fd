// vdcrypt XTS core: AES-256-XTS (IEEE Std 1619-2007, NIST SP 800-38E) on runs of disk sectors.
//
// A "data unit" is one sector. The tweak of sector n is n as a 128-bit little-endian integer, as in
// dm-crypt's aes-xts-plain64, so a run starting at sector `first` uses first, first+1, ... as tweaks.
//
// Each CPU path (VAES+AVX-512, VAES+AVX2, AES-NI, portable) lives in its own translation unit, compiled with its own
// `#pragma GCC target`, and is reached through the XtsImpl function table chosen in xts_dispatch.cc.
// Nothing in here depends on Node; addon.cc is the only file that knows about N-API.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vdcrypt {

constexpr size_t kAesBlockBytes = 16;
constexpr int kAes256Rounds = 14;
constexpr size_t kAes256KeyBytes = 32;
constexpr size_t kXtsKeyBytes = 2 * kAes256KeyBytes;  // key1 || key2
constexpr size_t kMinSectorBytes = 512;
constexpr size_t kMaxSectorBytes = 4096;

enum class Direction { kEncrypt, kDecrypt };

// Expanded key material for one XTS key. Lives in native memory only and is wiped by wipe_schedule().
struct alignas(64) KeySchedule {
  // Round keys of key1 for encryption: enc1[0] is the whitening key, enc1[14] the last round key.
  uint8_t enc1[kAes256Rounds + 1][kAesBlockBytes];
  // Round keys of key1 for the equivalent inverse cipher (AESDEC order): dec1[0] = enc1[14],
  // dec1[i] = InvMixColumns(enc1[14 - i]) for 1 <= i <= 13, dec1[14] = enc1[0].
  uint8_t dec1[kAes256Rounds + 1][kAesBlockBytes];
  // Round keys of key2 (the tweak key), encryption only.
  uint8_t enc2[kAes256Rounds + 1][kAesBlockBytes];
  // The raw 64-byte key, kept for paths that hand the key to another library (portable).
  uint8_t raw[kXtsKeyBytes];
};

// CPU features relevant to the dispatch, read once with CPUID/XGETBV.
struct CpuFeatures {
  bool sse41 = false;
  bool aesni = false;
  bool pclmulqdq = false;
  bool avx = false;
  bool avx2 = false;
  bool vaes = false;
  bool vpclmulqdq = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
};

// The CRC-64/NVME (crc64.h) of the ciphertext a run of seal_sectors calls wrote, kept as the sixteen 128-bit
// folding lanes of crc64_fold_vpclmul512; `started` once the first 256 bytes are in (crc64_seal_value ends it).
struct alignas(64) SealCrc {
  uint8_t lanes[256] = {};
  bool started = false;
};

// One implementation of the XTS primitives.
struct XtsImpl {
  const char* name;
  bool (*available)(const CpuFeatures&);
  // Fill every field of *ks from the 64-byte key. Never fails (key checks happen before).
  void (*expand_key)(const uint8_t key[kXtsKeyBytes], KeySchedule* ks);
  // Encrypt or decrypt `count` consecutive sectors of `sector_bytes` each; sector i uses tweak first + i.
  // src and dst are either identical or do not overlap. first + count - 1 must not exceed 2^64 - 1.
  void (*sectors)(const KeySchedule& ks, Direction dir, const uint8_t* src, uint8_t* dst, size_t count,
                  size_t sector_bytes, uint64_t first);
  // Single-block primitives used by the general data-unit function (ciphertext stealing).
  void (*encrypt_block_key1)(const KeySchedule& ks, const uint8_t in[16], uint8_t out[16]);
  void (*decrypt_block_key1)(const KeySchedule& ks, const uint8_t in[16], uint8_t out[16]);
  void (*encrypt_block_key2)(const KeySchedule& ks, const uint8_t in[16], uint8_t out[16]);
  // Encrypt `count` 512-byte sectors as `sectors` does and fold the ciphertext into *crc while it is still in
  // registers, storing it past the caches where dst is 64-byte aligned (nothing reads it before it is sent).
  // nullptr where a path has no such form: the caller then encrypts and checksums in two steps.
  void (*seal_sectors)(const KeySchedule& ks, const uint8_t* src, uint8_t* dst, size_t count, uint64_t first,
                       SealCrc* crc);
};

// Per-path tables, defined in their own translation units.
extern const XtsImpl kImplVaes512;
extern const XtsImpl kImplVaes;
extern const XtsImpl kImplAesni;
extern const XtsImpl kImplPortable;

// AES-256 key expansion with AES-NI (xts_aesni.cc), shared by the AES-NI and VAES paths.
void aesni_expand_key(const uint8_t key[kXtsKeyBytes], KeySchedule* ks);

// Dispatch (xts_dispatch.cc).
const CpuFeatures& cpu_features();
// The implementation called `name` if it exists and runs on this CPU, else nullptr. "auto" picks the best.
const XtsImpl* find_impl(const char* name);
// All implementations, best first; `count` receives the number of entries.
const XtsImpl* const* all_impls(size_t* count);

// General XTS data unit of any length >= 16 bytes (IEEE 1619 section 5.3.2 / 5.4.2, with ciphertext stealing
// for a final partial block). `tweak` is the 16-byte tweak value before encryption with key2. src and dst are
// identical or disjoint. Returns false if len < 16.
bool xts_data_unit(const XtsImpl& impl, const KeySchedule& ks, Direction dir, const uint8_t* src, uint8_t* dst,
                   size_t len, const uint8_t tweak[kAesBlockBytes]);

// Multiply a tweak (128-bit little-endian value) by x in GF(2^128) mod x^128 + x^7 + x^2 + x + 1.
inline void gf128_mul_x(uint64_t& lo, uint64_t& hi) {
  const uint64_t carry = hi >> 63;
  hi = (hi << 1) | (lo >> 63);
  lo = (lo << 1) ^ (0x87 & (0 - carry));
}

// Wipe memory in a way the compiler cannot elide.
void secure_wipe(void* p, size_t n);
inline void wipe_schedule(KeySchedule* ks) { secure_wipe(ks, sizeof(*ks)); }

}  // namespace vdcrypt
