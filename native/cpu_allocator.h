// cpu_allocator.h: the CPU backend's caching allocator (one per Node environment).
//
// Buffers are named by numeric ids that are never reused, so a stale id is always caught.
// Memory is 64-byte aligned. Sizes are rounded up to a size class; free() puts the block in a
// pool keyed by its class and a later alloc() of the same class takes it back. This is safe
// without waiting because all work runs in order on one stream (the CUDA caching allocator's
// argument): any task that used the old buffer was queued before any task that uses the new
// one. Only releasing memory to the OS must wait for the stream, so release_pool() hands the
// blocks back to the caller, which frees them in stream order (see cpu_addon.cc).
//
// Not thread-safe: only the JS thread of its environment calls it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "buffer_table.h"

namespace imagerate {

struct CpuBlock {
  void* ptr = nullptr;
  uint64_t bytes = 0;     // as requested by alloc()
  uint64_t capacity = 0;  // size class actually held
};

struct CpuAllocStats {
  uint64_t live_buffers = 0, live_bytes = 0;      // bytes = capacity held by live buffers
  uint64_t pooled_buffers = 0, pooled_bytes = 0;  // freed, kept for reuse
};

class CpuAllocator : public BufferTable {
 public:
  CpuAllocator() = default;
  CpuAllocator(const CpuAllocator&) = delete;
  CpuAllocator& operator=(const CpuAllocator&) = delete;
  ~CpuAllocator();  // frees everything: the stream must be stopped first

  // Returns the new id, or 0 when the system allocator fails (the pool is left intact; the
  // caller may drain the stream, free the pool and retry).
  uint64_t alloc(uint64_t bytes);
  bool free(uint64_t id);               // false if the id is not live
  const CpuBlock* find(uint64_t id) const;  // nullptr if not live
  bool resolve(uint64_t id, Buf* out) override;  // find(), for the op checks
  CpuAllocStats stats() const;
  // Empties the pool and returns its blocks' memory; the caller must std::free them (with
  // aligned storage from posix_memalign) once no queued task can touch them.
  std::vector<void*> release_pool();

  static uint64_t size_class(uint64_t bytes);

 private:
  std::unordered_map<uint64_t, CpuBlock> live_;
  std::multimap<uint64_t, void*> pool_;  // capacity -> block
  CpuAllocStats stats_;
  uint64_t next_id_ = 1;
};

}  // namespace imagerate
