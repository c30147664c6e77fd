// N-API binding of the vdcrypt XTS core. The only file that knows about Node.
//
// The surface is small and coarse (each call does a run of sectors): the TypeScript layer in lib/xts validates
// arguments and throws the public errors; every check is repeated here and stays on in release builds, so a
// caller that bypasses the TypeScript layer gets an exception, never memory corruption. Plain C N-API is used
// because its per-call overhead is lower than the C++ wrappers'.
//
// Key handles are externals pointing at NativeKey slots (key_slots.h, validated by address on every call),
// holding a KeySchedule in native memory; it is wiped on dispose and on garbage collection. Async calls copy the key schedule, hold references to the caller's buffers until they
// settle, and split large inputs across the libuv pool (no more chunks than cores).
#include <node_api.h>
#ifdef __linux__
#include <sched.h>
#include <sys/mman.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "crc64.h"
#include "key_slots.h"
#include "xts.h"

namespace vdcrypt {
namespace {

constexpr size_t kSyncLimitBytes = 32 * 1024;        // async calls below this run on the calling thread
constexpr size_t kMinChunkBytes = 256 * 1024;        // smallest piece of work handed to a pool thread

// ---- small helpers ---------------------------------------------------------------------------------------

#define VD_CALL(env, call)                                             \
  do {                                                                 \
    if ((call) != napi_ok) {                                           \
      throw_pending_or(env, "ERR_VDCRYPT_NAPI", #call " failed");      \
      return nullptr;                                                  \
    }                                                                  \
  } while (0)

void throw_pending_or(napi_env env, const char* code, const char* msg) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, code, msg);
}

napi_value type_error(napi_env env, const char* code, const char* msg) {
  napi_throw_type_error(env, code, msg);
  return nullptr;
}

napi_value range_error(napi_env env, const char* code, const char* msg) {
  napi_throw_range_error(env, code, msg);
  return nullptr;
}

napi_value plain_error(napi_env env, const char* code, const char* msg) {
  napi_throw_error(env, code, msg);
  return nullptr;
}

bool get_bytes(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  // napi_get_typedarray_info fails (without throwing) for anything that is not a typed array.
  napi_typedarray_type type;
  void* ptr = nullptr;
  if (napi_get_typedarray_info(env, v, &type, len, &ptr, nullptr, nullptr) != napi_ok) return false;
  if (type != napi_uint8_array) return false;
  *data = static_cast<uint8_t*>(ptr);
  return true;
}

// The key behind a handle, including disposed ones; nullptr (with a TypeError thrown) for anything else.
NativeKey* get_any_key(napi_env env, napi_value v) {
  void* ptr = nullptr;
  if (napi_get_value_external(env, v, &ptr) != napi_ok || !KeySlots::owns(ptr)) {
    type_error(env, "ERR_VDCRYPT_KEY_HANDLE", "expected a vdcrypt key handle");
    return nullptr;
  }
  return static_cast<NativeKey*>(ptr);
}

NativeKey* get_key(napi_env env, napi_value v) {
  NativeKey* key = get_any_key(env, v);
  if (key == nullptr) return nullptr;
  if (key->disposed) {
    plain_error(env, "KeyDisposed", "the XTS key has been disposed");
    return nullptr;
  }
  return key;
}

// A sector number: a non-negative integer Number (exact, <= 2^53 - 1) or a BigInt in [0, 2^64 - 1].
bool get_sector(napi_env env, napi_value v, uint64_t* out) {
  // Numbers are the common case: try them first and look at BigInts only when that fails by type.
  double d = 0;
  const napi_status status = napi_get_value_double(env, v, &d);
  if (status == napi_number_expected) {
    bool lossless = false;
    return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok && lossless;
  }
  if (status != napi_ok) return false;
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

bool get_bool(napi_env env, napi_value v, bool* out) { return napi_get_value_bool(env, v, out) == napi_ok; }

bool overlaps_partially(const uint8_t* a, const uint8_t* b, size_t n) {
  if (a == b) return false;
  return a < b + n && b < a + n;
}

// Arguments shared by the sync and async sector calls: (key, encrypt, src, dst, sectorBytes, firstSector).
struct SectorArgs {
  NativeKey* key = nullptr;
  Direction dir = Direction::kEncrypt;
  uint8_t* src = nullptr;
  uint8_t* dst = nullptr;
  size_t bytes = 0;
  size_t sector_bytes = 0;
  uint64_t first = 0;
  napi_value src_value = nullptr;  // the JS views, for async calls to hold on to
  napi_value dst_value = nullptr;
};

bool parse_sector_args(napi_env env, napi_callback_info info, SectorArgs* a) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) {
    throw_pending_or(env, "ERR_VDCRYPT_NAPI", "napi_get_cb_info failed");
    return false;
  }
  if (argc != 6) return type_error(env, "ERR_VDCRYPT_ARGS", "expected 6 arguments"), false;
  a->src_value = argv[2];
  a->dst_value = argv[3];
  a->key = get_key(env, argv[0]);
  if (a->key == nullptr) return false;
  bool encrypt = true;
  if (!get_bool(env, argv[1], &encrypt)) return type_error(env, "ERR_VDCRYPT_ARGS", "encrypt must be a boolean"), false;
  a->dir = encrypt ? Direction::kEncrypt : Direction::kDecrypt;
  size_t dst_len = 0;
  if (!get_bytes(env, argv[2], &a->src, &a->bytes)) {
    return type_error(env, "ERR_VDCRYPT_ARGS", "src must be a Uint8Array"), false;
  }
  if (!get_bytes(env, argv[3], &a->dst, &dst_len)) {
    return type_error(env, "ERR_VDCRYPT_ARGS", "dst must be a Uint8Array"), false;
  }
  uint32_t sector_bytes = 0;
  if (napi_get_value_uint32(env, argv[4], &sector_bytes) != napi_ok) {
    return type_error(env, "ERR_VDCRYPT_ARGS", "sectorSize must be a number"), false;
  }
  a->sector_bytes = sector_bytes;
  if (a->sector_bytes != kMinSectorBytes && a->sector_bytes != kMaxSectorBytes) {
    return range_error(env, "ERR_VDCRYPT_SECTOR_SIZE", "sectorSize must be 512 or 4096"), false;
  }
  if (a->bytes % a->sector_bytes != 0) {
    return range_error(env, "ERR_VDCRYPT_LENGTH", "src length must be a multiple of sectorSize"), false;
  }
  if (dst_len != a->bytes) return range_error(env, "ERR_VDCRYPT_LENGTH", "dst length must equal src length"), false;
  if (overlaps_partially(a->src, a->dst, a->bytes)) {
    return range_error(env, "ERR_VDCRYPT_OVERLAP", "src and dst overlap partially"), false;
  }
  if (!get_sector(env, argv[5], &a->first)) {
    return range_error(env, "ERR_VDCRYPT_SECTOR", "firstSector must be an integer in [0, 2^64 - 1]"), false;
  }
  const uint64_t count = a->bytes / a->sector_bytes;
  if (count > 0 && a->first > UINT64_MAX - (count - 1)) {
    return range_error(env, "ERR_VDCRYPT_SECTOR", "the run of sectors passes sector 2^64 - 1"), false;
  }
  return true;
}

// ---- key handles -----------------------------------------------------------------------------------------

void finalize_key(napi_env, void* data, void*) {
  KeySlots::release(static_cast<NativeKey*>(data));
}

bool halves_equal(const uint8_t* key) {
  uint8_t diff = 0;
  for (size_t i = 0; i < kAes256KeyBytes; ++i) diff |= key[i] ^ key[kAes256KeyBytes + i];
  return diff == 0;
}

// createKey(key: Uint8Array(64), impl: string) -> handle
napi_value CreateKey(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  VD_CALL(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 2) return type_error(env, "ERR_VDCRYPT_ARGS", "expected 2 arguments");
  uint8_t* key_bytes = nullptr;
  size_t key_len = 0;
  if (!get_bytes(env, argv[0], &key_bytes, &key_len)) return type_error(env, "ERR_VDCRYPT_ARGS", "key must be a Uint8Array");
  if (key_len != kXtsKeyBytes) return range_error(env, "ERR_VDCRYPT_KEY_LENGTH", "key must be 64 bytes");
  if (halves_equal(key_bytes)) return range_error(env, "WeakXtsKey", "key1 and key2 must differ");
  char name[32];
  size_t name_len = 0;
  if (napi_get_value_string_utf8(env, argv[1], name, sizeof(name), &name_len) != napi_ok) {
    return type_error(env, "ERR_VDCRYPT_ARGS", "impl must be a string");
  }
  const XtsImpl* impl = find_impl(name);
  if (impl == nullptr) return plain_error(env, "ImplementationUnavailable", "the requested implementation does not run on this CPU");
  NativeKey* key = KeySlots::allocate();
  if (key == nullptr) return plain_error(env, "ERR_VDCRYPT_NOMEM", "out of memory for another XTS key");
  key->impl = impl;
  impl->expand_key(key_bytes, &key->schedule);
  napi_value handle;
  if (napi_create_external(env, key, finalize_key, nullptr, &handle) != napi_ok) {
    finalize_key(env, key, nullptr);
    throw_pending_or(env, "ERR_VDCRYPT_NAPI", "napi_create_external failed");
    return nullptr;
  }
  return handle;
}

// disposeKey(handle): wipe now; the handle stays valid but refuses further use. Disposing twice is a no-op.
napi_value DisposeKey(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  VD_CALL(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 1) return type_error(env, "ERR_VDCRYPT_KEY_HANDLE", "expected a vdcrypt key handle");
  NativeKey* key = get_any_key(env, argv[0]);
  if (key == nullptr) return nullptr;
  wipe_schedule(&key->schedule);
  key->disposed = true;  // the slot itself is released when the handle is collected
  return nullptr;
}

// keyImplementation(handle) -> string
napi_value KeyImplementation(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  VD_CALL(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 1) return type_error(env, "ERR_VDCRYPT_ARGS", "expected 1 argument");
  NativeKey* key = get_key(env, argv[0]);
  if (key == nullptr) return nullptr;
  napi_value out;
  VD_CALL(env, napi_create_string_utf8(env, key->impl->name, NAPI_AUTO_LENGTH, &out));
  return out;
}

// ---- synchronous work ------------------------------------------------------------------------------------

// crypt(handle, encrypt, src, dst, sectorSize, firstSector)
napi_value Crypt(napi_env env, napi_callback_info info) {
  SectorArgs a;
  if (!parse_sector_args(env, info, &a)) return nullptr;
  a.key->impl->sectors(a.key->schedule, a.dir, a.src, a.dst, a.bytes / a.sector_bytes, a.sector_bytes, a.first);
  return nullptr;
}

// dataUnit(handle, encrypt, src, dst, tweak16): one data unit of any length >= 16, with ciphertext stealing.
napi_value DataUnit(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  VD_CALL(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 5) return type_error(env, "ERR_VDCRYPT_ARGS", "expected 5 arguments");
  NativeKey* key = get_key(env, argv[0]);
  if (key == nullptr) return nullptr;
  bool encrypt = true;
  if (!get_bool(env, argv[1], &encrypt)) return type_error(env, "ERR_VDCRYPT_ARGS", "encrypt must be a boolean");
  uint8_t *src = nullptr, *dst = nullptr, *tweak = nullptr;
  size_t src_len = 0, dst_len = 0, tweak_len = 0;
  if (!get_bytes(env, argv[2], &src, &src_len) || !get_bytes(env, argv[3], &dst, &dst_len) ||
      !get_bytes(env, argv[4], &tweak, &tweak_len)) {
    return type_error(env, "ERR_VDCRYPT_ARGS", "src, dst and tweak must be Uint8Arrays");
  }
  if (tweak_len != kAesBlockBytes) return range_error(env, "ERR_VDCRYPT_TWEAK", "tweak must be 16 bytes");
  if (src_len < kAesBlockBytes) return range_error(env, "ERR_VDCRYPT_LENGTH", "a data unit is at least 16 bytes");
  if (dst_len != src_len) return range_error(env, "ERR_VDCRYPT_LENGTH", "dst length must equal src length");
  if (overlaps_partially(src, dst, src_len)) return range_error(env, "ERR_VDCRYPT_OVERLAP", "src and dst overlap partially");
  xts_data_unit(*key->impl, key->schedule, encrypt ? Direction::kEncrypt : Direction::kDecrypt, src, dst, src_len, tweak);
  return nullptr;
}

// ---- asynchronous work -----------------------------------------------------------------------------------

struct AsyncCall;

struct Chunk {
  AsyncCall* call = nullptr;
  size_t first_index = 0;  // sector offset within the call
  size_t count = 0;
  napi_async_work work = nullptr;
};

struct AsyncCall {
  KeySchedule schedule;  // a copy: disposing the key while this runs is safe
  const XtsImpl* impl = nullptr;
  Direction dir = Direction::kEncrypt;
  const uint8_t* src = nullptr;
  uint8_t* dst = nullptr;
  size_t sector_bytes = 0;
  uint64_t first = 0;
  napi_ref src_ref = nullptr;  // the caller's buffers stay alive until the promise settles
  napi_ref dst_ref = nullptr;
  napi_deferred deferred = nullptr;
  std::vector<Chunk> chunks;
  size_t pending = 0;
  bool failed = false;
};

// Settle an async call's promise with an Error carrying `message`.
void reject_with(napi_env env, napi_deferred deferred, const char* message) {
  napi_value msg, err;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, nullptr, msg, &err);
  napi_reject_deferred(env, deferred, err);
}

// Free an async call (AsyncCall or SealCall): drop its hold on the caller's buffers, wipe its key copy.
template <typename Call>
void release_call(napi_env env, Call* call) {
  if (call->src_ref != nullptr) napi_delete_reference(env, call->src_ref);
  if (call->dst_ref != nullptr) napi_delete_reference(env, call->dst_ref);
  wipe_schedule(&call->schedule);
  delete call;
}

void execute_chunk(napi_env, void* data) {
  Chunk* chunk = static_cast<Chunk*>(data);
  AsyncCall* call = chunk->call;
  const size_t off = chunk->first_index * call->sector_bytes;
  call->impl->sectors(call->schedule, call->dir, call->src + off, call->dst + off, chunk->count, call->sector_bytes,
                      call->first + chunk->first_index);
}

void complete_chunk(napi_env env, napi_status status, void* data) {
  Chunk* chunk = static_cast<Chunk*>(data);
  AsyncCall* call = chunk->call;
  napi_delete_async_work(env, chunk->work);
  chunk->work = nullptr;
  if (status != napi_ok) call->failed = true;
  if (--call->pending != 0) return;
  if (call->failed) {
    reject_with(env, call->deferred, "async XTS work was cancelled");
  } else {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, call->deferred, undefined);
  }
  release_call(env, call);
}

// CPUs this process may run on (its affinity mask), at least 1.
size_t available_cores() {
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

size_t worker_count(size_t bytes) {
  const size_t cores = available_cores();
  const size_t by_size = std::max<size_t>(1, bytes / kMinChunkBytes);
  return std::min(cores, by_size);
}

// cryptAsync(handle, encrypt, src, dst, sectorSize, firstSector) -> Promise<void>
napi_value CryptAsync(napi_env env, napi_callback_info info) {
  SectorArgs a;
  if (!parse_sector_args(env, info, &a)) return nullptr;
  napi_value promise;
  napi_deferred deferred;
  VD_CALL(env, napi_create_promise(env, &deferred, &promise));
  const size_t count = a.bytes / a.sector_bytes;
  if (a.bytes < kSyncLimitBytes) {
    // Smaller than the cost of a thread hand-off: do it now, still answering with a promise.
    a.key->impl->sectors(a.key->schedule, a.dir, a.src, a.dst, count, a.sector_bytes, a.first);
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, deferred, undefined);
    return promise;
  }
  AsyncCall* call = new (std::nothrow) AsyncCall();
  if (call == nullptr) return plain_error(env, "ERR_VDCRYPT_NOMEM", "out of memory");
  std::memcpy(&call->schedule, &a.key->schedule, sizeof(KeySchedule));
  call->impl = a.key->impl;
  call->dir = a.dir;
  call->src = a.src;
  call->dst = a.dst;
  call->sector_bytes = a.sector_bytes;
  call->first = a.first;
  call->deferred = deferred;
  const size_t workers = worker_count(a.bytes);
  call->chunks.resize(workers);
  napi_value resource_name;
  VD_CALL(env, napi_create_string_utf8(env, "vdcrypt:xts", NAPI_AUTO_LENGTH, &resource_name));
  bool ok = napi_create_reference(env, a.src_value, 1, &call->src_ref) == napi_ok &&
            napi_create_reference(env, a.dst_value, 1, &call->dst_ref) == napi_ok;
  size_t start = 0;
  for (size_t i = 0; ok && i < workers; ++i) {
    Chunk& c = call->chunks[i];
    c.call = call;
    c.first_index = start;
    c.count = count / workers + (i < count % workers ? 1 : 0);
    start += c.count;
    ok = napi_create_async_work(env, nullptr, resource_name, execute_chunk, complete_chunk, &c, &c.work) == napi_ok;
  }
  if (!ok) {
    for (Chunk& c : call->chunks) {
      if (c.work != nullptr) napi_delete_async_work(env, c.work);
    }
    release_call(env, call);
    throw_pending_or(env, "ERR_VDCRYPT_NAPI", "could not schedule async XTS work");
    return nullptr;
  }
  call->pending = workers;
  for (Chunk& c : call->chunks) napi_queue_async_work(env, c.work);
  return promise;
}

// ---- sealing: zero-page scan + XTS + CRC64 in one pass -----------------------------------------------------

// What an upload does to each extent before its Put Pages, done by one pool thread in a single pass so that no
// byte is read again on the main thread: find the runs of pages that are not all zero (at most max_run pages
// each), encrypt them (when a key is given) and take Azure's CRC64 of each run's output while it is still in
// L1/L2. Where the XTS path has a fused form (XtsImpl::seal_sectors: vaes512), the CRC64 is folded from the
// ciphertext registers and, on a 64-byte aligned dst, the ciphertext is written with non-temporal stores: one
// read of the source and one write of dst, nothing read back, and no cache lines taken from the process that
// receives the upload (1 GiB: 0.09 s, against 0.14 s in two steps). Pages are 512 bytes; all-zero pages are
// left out and their bytes in dst are not written.
constexpr size_t kPageBytes = 512;
// 16 KiB: encrypted into dst, then checksummed while both stay in L1 (on a fused path, in one call). While a
// block is in the AES and CLMUL units no load of the source is in flight, so on the two-step paths each block
// first prefetches the source of the next one: the DRAM reads then overlap the work instead of following it.
// The fused kernel prefetches sector by sector itself (xts_vaes512.cc, kSealPrefetchBytes).
constexpr size_t kSealBlockPages = 32;
constexpr size_t kCacheLine = 64;

void prefetch(const uint8_t* from, const uint8_t* end) {
  for (const uint8_t* p = from; p < end; p += kCacheLine) __builtin_prefetch(p, 0, 3);
}

struct SealCall {
  KeySchedule schedule;  // a copy, as for cryptAsync
  const XtsImpl* impl = nullptr;  // nullptr: no encryption (plaintext runs)
  const uint8_t* src = nullptr;
  uint8_t* dst = nullptr;
  size_t pages = 0;
  uint64_t first = 0;
  size_t max_run = 0;
  napi_ref src_ref = nullptr;
  napi_ref dst_ref = nullptr;
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
  std::vector<uint64_t> runs;  // start, end (pages from src), crc64 of the run's output; three per run
};

bool zero_page(const uint8_t* p) {
  uint64_t word = 0;
  std::memcpy(&word, p, sizeof(word));
  if (word != 0) return false;  // the usual answer for data, after one load
  uint64_t acc = 0;
  for (size_t i = sizeof(word); i < kPageBytes; i += sizeof(word)) {
    std::memcpy(&word, p + i, sizeof(word));
    acc |= word;
  }
  return acc == 0;
}

void execute_seal(napi_env, void* data) {
  SealCall* call = static_cast<SealCall*>(data);
  // Where the path encrypts and checksums in one pass, each run's CRC is kept in `fused`, else in `crc`.
  const bool fuse = call->impl != nullptr && call->impl->seal_sectors != nullptr;
  SealCrc fused;
  const size_t n = call->pages;
  size_t i = 0;
  while (i < n) {
    if (zero_page(call->src + i * kPageBytes)) {
      ++i;
      continue;
    }
    const size_t start = i;
    uint64_t crc = 0;
    fused.started = false;
    while (i < n && i - start < call->max_run && !zero_page(call->src + i * kPageBytes)) {
      const size_t block = i;
      const size_t next = std::min(n, block + kSealBlockPages);
      if (!fuse) prefetch(call->src + next * kPageBytes, call->src + std::min(n, next + kSealBlockPages) * kPageBytes);
      do {
        ++i;
      } while (i < n && i - start < call->max_run && i - block < kSealBlockPages && !zero_page(call->src + i * kPageBytes));
      const size_t off = block * kPageBytes, len = (i - block) * kPageBytes;
      if (fuse) {
        call->impl->seal_sectors(call->schedule, call->src + off, call->dst + off, i - block, call->first + block, &fused);
        continue;
      }
      const uint8_t* out = call->src + off;
      if (call->impl != nullptr) {
        call->impl->sectors(call->schedule, Direction::kEncrypt, call->src + off, call->dst + off, i - block, kPageBytes,
                            call->first + block);
        out = call->dst + off;
      }
      crc = crc64_nvme(crc, out, len);
    }
    call->runs.push_back(start);
    call->runs.push_back(i);
    call->runs.push_back(fuse ? crc64_seal_value(fused.lanes) : crc);
  }
}

void complete_seal(napi_env env, napi_status status, void* data) {
  SealCall* call = static_cast<SealCall*>(data);
  napi_delete_async_work(env, call->work);
  napi_value result = nullptr;
  void* out = nullptr;
  const size_t bytes = call->runs.size() * sizeof(uint64_t);
  if (status == napi_ok && napi_create_buffer(env, bytes, &out, &result) == napi_ok) {
    // Little-endian uint64 triples: start, end, and the CRC64 in Azure's byte order (also little-endian).
    uint8_t* o = static_cast<uint8_t*>(out);
    for (size_t k = 0; k < call->runs.size(); ++k) {
      for (int b = 0; b < 8; ++b) o[k * 8 + b] = static_cast<uint8_t>(call->runs[k] >> (8 * b));
    }
    napi_resolve_deferred(env, call->deferred, result);
  } else {
    reject_with(env, call->deferred, "async seal work failed or was cancelled");
  }
  release_call(env, call);
}

// sealAsync(handle | null, src, dst | null, firstSector, maxRunPages) -> Promise<Buffer of uint64 LE triples>
napi_value SealAsync(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  VD_CALL(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 5) return type_error(env, "ERR_VDCRYPT_ARGS", "expected 5 arguments");
  napi_valuetype key_type;
  VD_CALL(env, napi_typeof(env, argv[0], &key_type));
  NativeKey* key = nullptr;
  if (key_type != napi_null) {
    key = get_key(env, argv[0]);
    if (key == nullptr) return nullptr;
  }
  uint8_t *src = nullptr, *dst = nullptr;
  size_t src_len = 0, dst_len = 0;
  if (!get_bytes(env, argv[1], &src, &src_len)) return type_error(env, "ERR_VDCRYPT_ARGS", "src must be a Uint8Array");
  if (src_len % kPageBytes != 0) return range_error(env, "ERR_VDCRYPT_LENGTH", "src length must be a multiple of 512");
  if (key != nullptr) {
    if (!get_bytes(env, argv[2], &dst, &dst_len)) return type_error(env, "ERR_VDCRYPT_ARGS", "dst must be a Uint8Array");
    if (dst_len != src_len) return range_error(env, "ERR_VDCRYPT_LENGTH", "dst length must equal src length");
    if (overlaps_partially(src, dst, src_len)) return range_error(env, "ERR_VDCRYPT_OVERLAP", "src and dst overlap partially");
  }
  uint64_t first = 0;
  if (!get_sector(env, argv[3], &first)) {
    return range_error(env, "ERR_VDCRYPT_SECTOR", "firstSector must be an integer in [0, 2^64 - 1]");
  }
  const uint64_t pages = src_len / kPageBytes;
  if (pages > 0 && first > UINT64_MAX - (pages - 1)) {
    return range_error(env, "ERR_VDCRYPT_SECTOR", "the run of sectors passes sector 2^64 - 1");
  }
  uint32_t max_run = 0;
  if (napi_get_value_uint32(env, argv[4], &max_run) != napi_ok || max_run == 0) {
    return range_error(env, "ERR_VDCRYPT_ARGS", "maxRunPages must be a positive integer");
  }
  SealCall* call = new (std::nothrow) SealCall();
  if (call == nullptr) return plain_error(env, "ERR_VDCRYPT_NOMEM", "out of memory");
  if (key != nullptr) {
    std::memcpy(&call->schedule, &key->schedule, sizeof(KeySchedule));
    call->impl = key->impl;
  }
  call->src = src;
  call->dst = dst;
  call->pages = pages;
  call->first = first;
  call->max_run = max_run;
  napi_value promise, resource_name;
  bool ok = napi_create_promise(env, &call->deferred, &promise) == napi_ok &&
            napi_create_string_utf8(env, "vdcrypt:seal", NAPI_AUTO_LENGTH, &resource_name) == napi_ok &&
            napi_create_reference(env, argv[1], 1, &call->src_ref) == napi_ok &&
            (key == nullptr || napi_create_reference(env, argv[2], 1, &call->dst_ref) == napi_ok) &&
            napi_create_async_work(env, nullptr, resource_name, execute_seal, complete_seal, call, &call->work) == napi_ok;
  if (!ok || napi_queue_async_work(env, call->work) != napi_ok) {
    if (call->work != nullptr) napi_delete_async_work(env, call->work);
    release_call(env, call);
    throw_pending_or(env, "ERR_VDCRYPT_NAPI", "could not schedule async seal work");
    return nullptr;
  }
  return promise;
}

// ---- introspection ---------------------------------------------------------------------------------------

napi_value set_bool(napi_env env, napi_value obj, const char* name, bool value) {
  napi_value v;
  if (napi_get_boolean(env, value, &v) != napi_ok) return nullptr;
  if (napi_set_named_property(env, obj, name, v) != napi_ok) return nullptr;
  return obj;
}

// cpuFeatures() -> { aesni, pclmulqdq, sse41, avx, avx2, vaes, vpclmulqdq, avx512f }
napi_value CpuFeaturesJs(napi_env env, napi_callback_info) {
  const CpuFeatures& f = cpu_features();
  napi_value obj;
  VD_CALL(env, napi_create_object(env, &obj));
  const struct {
    const char* name;
    bool value;
  } fields[] = {{"aesni", f.aesni}, {"pclmulqdq", f.pclmulqdq}, {"sse41", f.sse41}, {"avx", f.avx},
                {"avx2", f.avx2},   {"vaes", f.vaes},           {"vpclmulqdq", f.vpclmulqdq}, {"avx512f", f.avx512f},
                {"avx512bw", f.avx512bw}, {"avx512vl", f.avx512vl}};
  for (const auto& field : fields) {
    if (set_bool(env, obj, field.name, field.value) == nullptr) {
      throw_pending_or(env, "ERR_VDCRYPT_NAPI", "could not build cpuFeatures");
      return nullptr;
    }
  }
  return obj;
}

// implementations() -> string[] of the paths that run on this CPU, best first.
napi_value Implementations(napi_env env, napi_callback_info) {
  size_t n = 0;
  const XtsImpl* const* impls = all_impls(&n);
  napi_value arr;
  VD_CALL(env, napi_create_array(env, &arr));
  uint32_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!impls[i]->available(cpu_features())) continue;
    napi_value name;
    VD_CALL(env, napi_create_string_utf8(env, impls[i]->name, NAPI_AUTO_LENGTH, &name));
    VD_CALL(env, napi_set_element(env, arr, out++, name));
  }
  return arr;
}

// parallelism() -> the most pool threads one async call uses.
napi_value Parallelism(napi_env env, napi_callback_info) {
  napi_value v;
  VD_CALL(env, napi_create_uint32(env, static_cast<uint32_t>(available_cores()), &v));
  return v;
}

// measureClockGhz() -> the core's current clock in GHz, from a chain of dependent register-register adds (one
// cycle each on every x86-64 core; adds of immediates are avoided because newer cores fold them at rename). For the benchmark's cycles-per-byte column; the nominal clock in /proc/cpuinfo
// differs from the real one under turbo.
napi_value MeasureClockGhz(napi_env env, napi_callback_info) {
  constexpr uint64_t kIterations = 4'000'000;
  constexpr uint64_t kAddsPerIteration = 16;
  double best_seconds = 1e9;
  for (int attempt = 0; attempt < 5; ++attempt) {
    uint64_t x = 0;
    const uint64_t one = 1;
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < kIterations; ++i) {
      __asm__ volatile(
          "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
          "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
          "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
          "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0"
          : "+r"(x)
          : "r"(one));
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best_seconds = std::min(best_seconds, seconds);
  }
  napi_value v;
  VD_CALL(env, napi_create_double(env, static_cast<double>(kIterations * kAddsPerIteration) / best_seconds / 1e9, &v));
  return v;
}

// ---- memory for direct I/O -----------------------------------------------------------------------------------

constexpr size_t kIoAlignment = 4096;                  // covers every logical block size O_DIRECT asks for
constexpr size_t kMaxAlignedBytes = size_t{1} << 30;   // one buffer; the callers use a few MiB

// Takes a buffer's size (its finalizer hint: the rounded bytes) back off the GC's external memory.
void forget_external_memory(napi_env env, void* hint) {
  int64_t ignored = 0;
  napi_adjust_external_memory(env, -static_cast<int64_t>(reinterpret_cast<uintptr_t>(hint)), &ignored);
}

void free_aligned(napi_env env, void* data, void* hint) {
  free(data);
  forget_external_memory(env, hint);
}

// The size argument of alignedBuffer and poolBuffer (`fn`, for the messages): a whole number of bytes from 1 to
// 2^30, and the same rounded up to whole 4096-byte blocks; false (with a TypeError or RangeError thrown) when
// it is not one.
bool buffer_size_argument(napi_env env, napi_callback_info info, const char* fn, size_t* bytes, size_t* rounded) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) {
    throw_pending_or(env, "ERR_VDCRYPT_NAPI", "napi_get_cb_info failed");
    return false;
  }
  double requested = 0;
  if (argc < 1 || napi_get_value_double(env, argv[0], &requested) != napi_ok) {
    type_error(env, "ERR_VDCRYPT_ARG", (std::string(fn) + "(bytes) expects a number").c_str());
    return false;
  }
  if (!(requested >= 1 && requested <= static_cast<double>(kMaxAlignedBytes)) || requested != static_cast<double>(static_cast<size_t>(requested))) {
    range_error(env, "ERR_VDCRYPT_ARG", (std::string(fn) + "(bytes) takes a whole number from 1 to 2^30").c_str());
    return false;
  }
  *bytes = static_cast<size_t>(requested);
  *rounded = (*bytes + kIoAlignment - 1) / kIoAlignment * kIoAlignment;
  return true;
}

// `data` (`rounded` bytes of our own) as a Buffer of its first `bytes`, counted as external memory for the GC
// and given back by `finalize` (which takes that count back); null, with `data` given back and an error thrown,
// on failure.
napi_value external_buffer(napi_env env, void* data, size_t bytes, size_t rounded, napi_finalize finalize) {
  void* hint = reinterpret_cast<void*>(static_cast<uintptr_t>(rounded));
  int64_t ignored = 0;
  napi_adjust_external_memory(env, static_cast<int64_t>(rounded), &ignored);
  napi_value buffer;
  if (napi_create_external_buffer(env, bytes, data, finalize, hint, &buffer) != napi_ok) {
    finalize(env, data, hint);
    throw_pending_or(env, "ERR_VDCRYPT_NAPI", "napi_create_external_buffer failed");
    return nullptr;
  }
  return buffer;
}

// A zero-filled Buffer of `bytes` from posix_memalign (`rounded` bytes on a 4096-byte boundary).
napi_value aligned_heap_buffer(napi_env env, size_t bytes, size_t rounded) {
  void* data = nullptr;
  if (posix_memalign(&data, kIoAlignment, rounded) != 0 || data == nullptr) {
    return plain_error(env, "ERR_VDCRYPT_NOMEM", "could not allocate an aligned buffer");
  }
  std::memset(data, 0, rounded);
  return external_buffer(env, data, bytes, rounded, free_aligned);
}

// alignedBuffer(bytes) -> a zero-filled Buffer whose first byte sits on a 4096-byte boundary, so that the file
// layer can hand it to O_DIRECT writes. Freed by its finalizer; its size counts as external memory for the GC.
napi_value AlignedBuffer(napi_env env, napi_callback_info info) {
  size_t bytes = 0, rounded = 0;
  if (!buffer_size_argument(env, info, "alignedBuffer", &bytes, &rounded)) return nullptr;
  return aligned_heap_buffer(env, bytes, rounded);
}

#ifdef __linux__
void unmap_pool_buffer(napi_env env, void* data, void* hint) {
  munmap(data, static_cast<size_t>(reinterpret_cast<uintptr_t>(hint)));
  forget_external_memory(env, hint);
}
#endif

// poolBuffer(bytes) -> a Buffer of zero bytes whose first byte sits on a 4096-byte boundary, for the buffers
// the bulk paths keep and reuse. On Linux it is an anonymous mapping of its own, marked MADV_DONTFORK: a child
// process (child_process.spawn forks on Linux) does not share it, so a spawn does not write-protect it and its
// next use takes no copy-on-write faults (a 4 MiB buffer written after a spawn took 1024 of them); its pages
// are faulted in by whoever writes them first, and go back to the system when the Buffer is collected.
// Elsewhere it is alignedBuffer's memory.
napi_value PoolBuffer(napi_env env, napi_callback_info info) {
  size_t bytes = 0, rounded = 0;
  if (!buffer_size_argument(env, info, "poolBuffer", &bytes, &rounded)) return nullptr;
#ifdef __linux__
  void* data = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) return plain_error(env, "ERR_VDCRYPT_NOMEM", "could not map a pool buffer");
  madvise(data, rounded, MADV_DONTFORK);  // advisory: without it the buffer still works, as any other memory
  return external_buffer(env, data, bytes, rounded, unmap_pool_buffer);
#else
  return aligned_heap_buffer(env, bytes, rounded);
#endif
}

// The one Uint8Array argument of a call; false (with a TypeError thrown, `message`) when there is none.
bool view_argument(napi_env env, napi_callback_info info, const char* message, uint8_t** data, size_t* len) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) {
    throw_pending_or(env, "ERR_VDCRYPT_NAPI", "napi_get_cb_info failed");
    return false;
  }
  if (argc < 1 || !get_bytes(env, argv[0], data, len)) {
    type_error(env, "ERR_VDCRYPT_ARG", message);
    return false;
  }
  return true;
}

// addressAlignment(view) -> the largest power of two (up to 4096) that divides the address of view's first byte.
napi_value AddressAlignment(napi_env env, napi_callback_info info) {
  uint8_t* data = nullptr;
  size_t len = 0;
  if (!view_argument(env, info, "addressAlignment(view) expects a Uint8Array", &data, &len)) return nullptr;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(data);
  uint32_t alignment = 1;
  while (alignment < kIoAlignment && (addr & (uintptr_t{alignment} * 2 - 1)) == 0) alignment *= 2;
  napi_value v;
  VD_CALL(env, napi_create_uint32(env, alignment, &v));
  return v;
}

// crc64(view[, path]) -> the CRC-64/NVME of view (Azure's x-ms-content-crc64) as 8 little-endian bytes in a
// new Buffer. `path` ("auto", "tables", "pclmul", "vpclmul512") picks the code path, for tests; null when that
// path does not run on this CPU.
napi_value Crc64(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  VD_CALL(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  uint8_t* data = nullptr;
  size_t len = 0;
  if (argc < 1 || !get_bytes(env, argv[0], &data, &len)) return type_error(env, "ERR_VDCRYPT_ARG", "crc64(view) expects a Uint8Array");
  Crc64Path path = Crc64Path::kAuto;
  if (argc >= 2) {
    char name[16];
    size_t name_len = 0;
    if (napi_get_value_string_utf8(env, argv[1], name, sizeof(name), &name_len) != napi_ok) {
      return type_error(env, "ERR_VDCRYPT_ARG", "crc64 path must be a string");
    }
    const std::string n(name, name_len);
    if (n == "tables") path = Crc64Path::kTables;
    else if (n == "pclmul") path = Crc64Path::kPclmul;
    else if (n == "vpclmul512") path = Crc64Path::kVpclmul512;
    else if (n != "auto") return range_error(env, "ERR_VDCRYPT_ARG", "crc64 path must be auto, tables, pclmul or vpclmul512");
    if (!crc64_path_available(path)) {
      napi_value none;
      VD_CALL(env, napi_get_null(env, &none));
      return none;
    }
  }
  const uint64_t crc = crc64_nvme_path(0, data, len, path);
  void* out = nullptr;
  napi_value buffer;
  VD_CALL(env, napi_create_buffer(env, 8, &out, &buffer));
  for (int i = 0; i < 8; ++i) static_cast<uint8_t*>(out)[i] = static_cast<uint8_t>(crc >> (8 * i));
  return buffer;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"createKey", nullptr, CreateKey, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"disposeKey", nullptr, DisposeKey, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"keyImplementation", nullptr, KeyImplementation, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"crypt", nullptr, Crypt, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"cryptAsync", nullptr, CryptAsync, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"dataUnit", nullptr, DataUnit, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"cpuFeatures", nullptr, CpuFeaturesJs, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"implementations", nullptr, Implementations, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"parallelism", nullptr, Parallelism, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"measureClockGhz", nullptr, MeasureClockGhz, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"alignedBuffer", nullptr, AlignedBuffer, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"poolBuffer", nullptr, PoolBuffer, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"addressAlignment", nullptr, AddressAlignment, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"crc64", nullptr, Crc64, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sealAsync", nullptr, SealAsync, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return nullptr;
  return exports;
}

}  // namespace
}  // namespace vdcrypt

NAPI_MODULE(NODE_GYP_MODULE_NAME, vdcrypt::Init)
