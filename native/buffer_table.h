// buffer_table.h: how the addons' op checks (op_args.h) see buffers. JS names a buffer by a
// numeric id; a BufferTable (each backend's allocator: cpu_allocator.h, cuda_allocator.h)
// resolves it to memory. No Node-API and no CUDA here, so the allocators can include it.
#pragma once
#include <cstdint>

namespace imagerate {

struct Buf {
  uint64_t id = 0;
  void* ptr = nullptr;
  uint64_t bytes = 0;  // the size asked for at alloc()
  float* f32() const { return static_cast<float*>(ptr); }
  int32_t* i32() const { return static_cast<int32_t*>(ptr); }
};

class BufferTable {
 public:
  virtual ~BufferTable() = default;
  // Fills *out (id, ptr, bytes) and returns true when `id` names a live buffer.
  virtual bool resolve(uint64_t id, Buf* out) = 0;
};

}  // namespace imagerate
