// cuda_allocator.h: the CUDA addon's caching device allocator and its pinned host staging pool
// (one of each per addon instance, i.e. per Node environment).
//
// Device memory (CudaAllocator), the CPU allocator's design (cpu_allocator.h) on cudaMalloc:
//   - buffers are named by numeric ids that are never reused, so a stale id is always caught;
//   - sizes are rounded up to CpuAllocator::size_class (64-byte steps to 4 KiB, then 8 classes
//     per power of two) and freed blocks wait in a pool keyed by class for the next alloc();
//   - reuse needs no synchronisation because all work runs in order on the instance's one
//     stream: a kernel that used the old buffer was queued before any kernel that uses the new
//     one. Only handing memory back to the driver (cudaFree) must wait for the stream; the
//     caller does that with release_pool();
//   - a buffer that a captured CUDA graph uses is "held": free() of a held buffer only marks
//     it, and the block goes to the pool when the last graph holding it is destroyed (a replay
//     must never write into a buffer that was handed to someone else).
// alloc() never throws: it returns 0 and the CUDA error, and leaves the runtime's last-error
// slot clean, so the caller can empty the pool and retry, then report.
//
// Pinned host memory (PinnedPool): staging buffers for upload/download, from cudaHostAlloc, in
// the same size classes. Thread-safe: the completion thread returns download staging buffers.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "buffer_table.h"

namespace imagerate {

struct CudaBlock {
  void* ptr = nullptr;
  uint64_t bytes = 0;     // as requested by alloc()
  uint64_t capacity = 0;  // size class actually held
  uint32_t holds = 0;     // graphs using this buffer
  bool freed = false;     // free() was called while held
};

struct CudaAllocStats {
  uint64_t live_buffers = 0, live_bytes = 0;      // bytes = capacity held by live buffers
  uint64_t pooled_buffers = 0, pooled_bytes = 0;  // freed, kept for reuse
  uint64_t held_buffers = 0, held_bytes = 0;      // freed by JS, still used by a captured graph
  uint64_t device_bytes = 0;                      // everything obtained from cudaMalloc
  uint64_t malloc_calls = 0;                      // cudaMalloc calls so far (pool misses)
};

class CudaAllocator : public BufferTable {
 public:
  CudaAllocator() = default;
  CudaAllocator(const CudaAllocator&) = delete;
  CudaAllocator& operator=(const CudaAllocator&) = delete;
  ~CudaAllocator();  // cudaFree of everything, errors ignored: the stream must be drained first

  // Returns the new id, or 0 with *err set when cudaMalloc fails (the pool is left intact).
  uint64_t alloc(uint64_t bytes, cudaError_t* err);
  bool free(uint64_t id);                     // false if the id is not live
  const CudaBlock* find(uint64_t id) const;   // nullptr if not live (or freed while held)
  bool resolve(uint64_t id, Buf* out) override;  // find(), for the op checks
  CudaAllocStats stats() const { return stats_; }
  // Empties the pool and returns its blocks; the caller must cudaFree them once no queued
  // kernel can touch them (after a stream synchronise).
  std::vector<void*> release_pool();

  // Graph holds (cuda_graph.cc): hold() on a live id, release() on every id held before.
  void hold(uint64_t id);
  void release(uint64_t id);

 private:
  void to_pool(const CudaBlock& b);
  std::unordered_map<uint64_t, CudaBlock> live_;    // includes freed-but-held blocks
  std::multimap<uint64_t, void*> pool_;             // capacity -> block
  CudaAllocStats stats_;
  uint64_t next_id_ = 1;
};

// A pinned host block from PinnedPool.
struct PinnedBlock {
  void* ptr = nullptr;
  uint64_t capacity = 0;
};

class PinnedPool {
 public:
  PinnedPool() = default;
  PinnedPool(const PinnedPool&) = delete;
  PinnedPool& operator=(const PinnedPool&) = delete;
  ~PinnedPool();

  // A block of at least `bytes`; ptr == nullptr when cudaHostAlloc fails (callers then fall
  // back to a pageable copy, which is correct but synchronous).
  PinnedBlock acquire(uint64_t bytes);
  void give_back(const PinnedBlock& b);  // any thread
  cudaError_t trim();                    // cudaFreeHost of every pooled block; the first failure
  uint64_t pooled_bytes() const;
  uint64_t total_bytes() const;          // pooled + handed out

 private:
  mutable std::mutex mu_;
  std::multimap<uint64_t, void*> pool_;
  uint64_t pooled_ = 0, total_ = 0;
};

}  // namespace imagerate
