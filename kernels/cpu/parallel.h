// parallel.h: a small fixed-size worker pool for the CPU kernels.
//
// parallel_for(n, fn) splits [0, n) into at most num_threads() contiguous chunks and runs
// fn(begin, end, tid) on each, the calling thread taking chunk 0. It returns when all chunks
// are done. Nested calls from inside a chunk run serially on the calling thread (no deadlock,
// no oversubscription). The pool is created lazily; set_num_threads() may be called between
// kernels, never from inside one.
#pragma once
#include <cstdint>
#include <functional>

namespace imagerate {

int num_threads();
void set_num_threads(int n);  // n <= 0 means "all hardware threads"
bool in_parallel_region();

void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end, int tid)>& fn);

}  // namespace imagerate
