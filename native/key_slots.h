// Key handles for the N-API binding: where NativeKey objects live, and how a pointer that comes back from JS
// is validated before it is used.
//
// Keys are allocated in slabs that are never returned to the system, listed in a fixed, append-only table.
// A pointer taken from a JS external is accepted only if it is the start of a slot in one of those slabs:
// then it is memory of ours, whatever the caller passed, and reading its flags is safe. That check is a few
// comparisons, against ~15 ns for an N-API type-tag lookup on every call. Allocation and release take a
// mutex (workers and several Node environments may load the addon); the check reads only the append-only
// table. A released slot is marked disposed, so a stale or forged pointer to it meets `KeyDisposed`.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "xts.h"

namespace vdcrypt {

struct NativeKey {
  KeySchedule schedule;
  const XtsImpl* impl = nullptr;
  bool disposed = true;  // true while the slot is free
};

class KeySlots {
 public:
  static constexpr size_t kSlotsPerSlab = 64;
  static constexpr size_t kMaxSlabs = 4096;  // 262,144 live keys

  // A fresh slot (not disposed, schedule zeroed), or nullptr when out of memory or slots.
  static NativeKey* allocate() {
    std::lock_guard<std::mutex> lock(mutex());
    std::vector<NativeKey*>& free_list = free_slots();
    if (free_list.empty() && !grow()) return nullptr;
    NativeKey* key = free_list.back();
    free_list.pop_back();
    key->disposed = false;
    return key;
  }

  // Wipe the slot and make it reusable.
  static void release(NativeKey* key) {
    wipe_schedule(&key->schedule);
    key->impl = nullptr;
    std::lock_guard<std::mutex> lock(mutex());
    key->disposed = true;
    free_slots().push_back(key);
  }

  // True if `p` is the start of one of our slots.
  static bool owns(const void* p) {
    const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
    const size_t count = slab_count().load(std::memory_order_acquire);
    for (size_t i = 0; i < count; ++i) {
      const uintptr_t base = reinterpret_cast<uintptr_t>(slabs()[i]);
      if (addr >= base && addr < base + kSlotsPerSlab * sizeof(NativeKey)) {
        return (addr - base) % sizeof(NativeKey) == 0;
      }
    }
    return false;
  }

 private:
  static bool grow() {
    const size_t count = slab_count().load(std::memory_order_relaxed);
    if (count == kMaxSlabs) return false;
    NativeKey* slab = new (std::nothrow) NativeKey[kSlotsPerSlab];
    if (slab == nullptr) return false;
    slabs()[count] = slab;
    slab_count().store(count + 1, std::memory_order_release);
    for (size_t i = kSlotsPerSlab; i > 0; --i) free_slots().push_back(&slab[i - 1]);
    return true;
  }

  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<NativeKey*>& free_slots() {
    static std::vector<NativeKey*>* list = new std::vector<NativeKey*>();  // never destroyed: outlives envs
    return *list;
  }
  static NativeKey** slabs() {
    static NativeKey** table = new NativeKey*[kMaxSlabs]();
    return table;
  }
  static std::atomic<size_t>& slab_count() {
    static std::atomic<size_t> count{0};
    return count;
  }
};

}  // namespace vdcrypt
