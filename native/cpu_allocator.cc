// cpu_allocator.cc: see cpu_allocator.h. Size classes: multiples of 64 bytes up to 4 KiB,
// then 8 classes per power of two (at most 12.5% waste), so buffers of similar size share a
// class and a training step that allocates the same shapes every iteration reuses every block.
#include "cpu_allocator.h"

#include <cstdlib>

namespace imagerate {

namespace {
constexpr uint64_t kAlign = 64;
}  // namespace

uint64_t CpuAllocator::size_class(uint64_t bytes) {
  if (bytes <= 4096) return bytes == 0 ? kAlign : (bytes + kAlign - 1) / kAlign * kAlign;
  uint64_t top = uint64_t{1} << (63 - __builtin_clzll(bytes));  // highest power of two <= bytes
  uint64_t step = top / 8;
  return (bytes + step - 1) / step * step;
}

CpuAllocator::~CpuAllocator() {
  for (auto& kv : live_) std::free(kv.second.ptr);
  for (auto& kv : pool_) std::free(kv.second);
}

uint64_t CpuAllocator::alloc(uint64_t bytes) {
  const uint64_t cap = size_class(bytes);
  void* ptr = nullptr;
  auto it = pool_.find(cap);
  if (it != pool_.end()) {
    ptr = it->second;
    pool_.erase(it);
    stats_.pooled_buffers -= 1;
    stats_.pooled_bytes -= cap;
  } else {
    if (cap > (uint64_t)SIZE_MAX / 2 || posix_memalign(&ptr, kAlign, (size_t)cap) != 0) return 0;
  }
  const uint64_t id = next_id_++;
  live_.emplace(id, CpuBlock{ptr, bytes, cap});
  stats_.live_buffers += 1;
  stats_.live_bytes += cap;
  return id;
}

bool CpuAllocator::free(uint64_t id) {
  auto it = live_.find(id);
  if (it == live_.end()) return false;
  const CpuBlock b = it->second;
  live_.erase(it);
  stats_.live_buffers -= 1;
  stats_.live_bytes -= b.capacity;
  pool_.emplace(b.capacity, b.ptr);
  stats_.pooled_buffers += 1;
  stats_.pooled_bytes += b.capacity;
  return true;
}

const CpuBlock* CpuAllocator::find(uint64_t id) const {
  auto it = live_.find(id);
  return it == live_.end() ? nullptr : &it->second;
}

bool CpuAllocator::resolve(uint64_t id, Buf* out) {
  const CpuBlock* b = find(id);
  if (b) *out = Buf{id, b->ptr, b->bytes};
  return b != nullptr;
}

CpuAllocStats CpuAllocator::stats() const { return stats_; }

std::vector<void*> CpuAllocator::release_pool() {
  std::vector<void*> out;
  out.reserve(pool_.size());
  for (auto& kv : pool_) out.push_back(kv.second);
  pool_.clear();
  stats_.pooled_buffers = 0;
  stats_.pooled_bytes = 0;
  return out;
}

}  // namespace imagerate
