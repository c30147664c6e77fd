// Runtime CPU dispatch for the XTS core, the general data-unit function (ciphertext stealing), and wiping.
//
// CPU features are read once with CPUID and XGETBV (the OS must save the AVX state before any ymm path is
// used). Implementations are listed best first; "auto" takes the first one that runs here.
#include <cpuid.h>

#include <cstring>

#include "xts.h"

namespace vdcrypt {
namespace {

uint64_t read_xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.sse41 = (c & bit_SSE4_1) != 0;
  f.aesni = (c & bit_AES) != 0;
  f.pclmulqdq = (c & bit_PCLMUL) != 0;
  const bool osxsave = (c & bit_OSXSAVE) != 0;
  const bool cpu_avx = (c & bit_AVX) != 0;
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  const bool os_ymm = (xcr0 & 0x6) == 0x6;      // XMM and YMM state saved by the OS
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;    // plus opmask and ZMM state
  f.avx = cpu_avx && os_ymm;
  if (__get_cpuid_max(0, nullptr) >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = f.avx && (b & bit_AVX2) != 0;
    f.vaes = f.avx && (c & (1u << 9)) != 0;
    f.vpclmulqdq = f.avx && (c & (1u << 10)) != 0;
    f.avx512f = os_zmm && (b & bit_AVX512F) != 0;
    f.avx512bw = f.avx512f && (b & bit_AVX512BW) != 0;
    f.avx512vl = f.avx512f && (b & bit_AVX512VL) != 0;
  }
  return f;
}

const XtsImpl* const kAll[] = {&kImplVaes512, &kImplVaes, &kImplAesni, &kImplPortable};

inline void xor_block(uint8_t* out, const uint8_t* a, const uint8_t* b) {
  for (size_t i = 0; i < kAesBlockBytes; ++i) out[i] = a[i] ^ b[i];
}

// One XTS block step: out = E(in ^ t) ^ t (or D), with key1.
inline void xts_block(const XtsImpl& impl, const KeySchedule& ks, Direction dir, const uint8_t* in,
                      uint8_t* out, const uint8_t* t) {
  uint8_t x[kAesBlockBytes];
  xor_block(x, in, t);
  if (dir == Direction::kEncrypt) {
    impl.encrypt_block_key1(ks, x, x);
  } else {
    impl.decrypt_block_key1(ks, x, x);
  }
  xor_block(out, x, t);
  secure_wipe(x, sizeof(x));
}

inline void next_tweak(uint8_t* t) {
  uint64_t lo = 0, hi = 0;
  std::memcpy(&lo, t, 8);
  std::memcpy(&hi, t + 8, 8);
  gf128_mul_x(lo, hi);
  std::memcpy(t, &lo, 8);
  std::memcpy(t + 8, &hi, 8);
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const XtsImpl* const* all_impls(size_t* count) {
  *count = sizeof(kAll) / sizeof(kAll[0]);
  return kAll;
}

const XtsImpl* find_impl(const char* name) {
  const bool pick_best = std::strcmp(name, "auto") == 0;
  for (const XtsImpl* impl : kAll) {
    if (!pick_best && std::strcmp(name, impl->name) != 0) continue;
    return impl->available(cpu_features()) ? impl : nullptr;
  }
  return nullptr;
}

// IEEE Std 1619-2007 sections 5.3.2 (encryption) and 5.4.2 (decryption) with ciphertext stealing.
bool xts_data_unit(const XtsImpl& impl, const KeySchedule& ks, Direction dir, const uint8_t* src, uint8_t* dst,
                   size_t len, const uint8_t tweak[kAesBlockBytes]) {
  if (len < kAesBlockBytes) return false;
  const size_t full = len / kAesBlockBytes;      // m: whole blocks
  const size_t tail = len % kAesBlockBytes;      // b: bytes of the final partial block
  uint8_t t[kAesBlockBytes];
  impl.encrypt_block_key2(ks, tweak, t);
  const size_t plain_blocks = tail == 0 ? full : full - 1;
  for (size_t j = 0; j < plain_blocks; ++j) {
    xts_block(impl, ks, dir, src + j * kAesBlockBytes, dst + j * kAesBlockBytes, t);
    next_tweak(t);
  }
  if (tail != 0) {
    // t is T * x^(m-1); the stolen block uses T * x^m.
    const size_t last_full = (full - 1) * kAesBlockBytes;
    uint8_t t_next[kAesBlockBytes];
    std::memcpy(t_next, t, sizeof(t_next));
    next_tweak(t_next);
    uint8_t cc[kAesBlockBytes];
    uint8_t pp[kAesBlockBytes];
    uint8_t partial[kAesBlockBytes];
    std::memcpy(partial, src + last_full + kAesBlockBytes, tail);
    // Encryption processes block m-1 with T*x^(m-1) then the stolen block with T*x^m; decryption swaps them.
    const uint8_t* first_t = dir == Direction::kEncrypt ? t : t_next;
    const uint8_t* second_t = dir == Direction::kEncrypt ? t_next : t;
    xts_block(impl, ks, dir, src + last_full, cc, first_t);
    std::memcpy(pp, partial, tail);
    std::memcpy(pp + tail, cc + tail, kAesBlockBytes - tail);
    std::memcpy(dst + last_full + kAesBlockBytes, cc, tail);
    xts_block(impl, ks, dir, pp, dst + last_full, second_t);
    secure_wipe(cc, sizeof(cc));
    secure_wipe(pp, sizeof(pp));
    secure_wipe(partial, sizeof(partial));
    secure_wipe(t_next, sizeof(t_next));
  }
  secure_wipe(t, sizeof(t));
  return true;
}

void secure_wipe(void* p, size_t n) {
  volatile uint8_t* v = static_cast<volatile uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) v[i] = 0;
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

}  // namespace vdcrypt
