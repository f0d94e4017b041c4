// gemm_bench.h: GEMM benchmark exports of imagerate_cpu.node (ours against OpenBLAS).
//
//   gemmTimed(m, n, k, threads, iters, warmup) -> Float64Array   per-iteration seconds of our
//       gemm_f32 (NN, alpha 1, beta 0) on freshly allocated random row-major matrices
//   blasInfo() -> {available, reason?, library?, config?}      OpenBLAS, dlopen'ed at run time
//   blasTimed(m, n, k, threads, iters, warmup) -> Float64Array   the same protocol via cblas_sgemm
//   cpuClockGhz() -> number   the clock a busy core runs at, measured (NaN off x86-64); the
//       fp32 peak in src/bench/host.ts uses it, because /proc/cpuinfo's "cpu MHz" is only the
//       nominal clock under a hypervisor and boost makes measured GFLOP/s exceed a peak built on it
//
// Synchronous on the JS thread (it is a benchmark: nothing else should run meanwhile).
// `threads` resizes the shared kernel pool, so call it with the addon's stream idle: call
// setThreads(threads) first (it waits for queued work), as src/bench/gemm-bench.ts does.
// OpenBLAS is only ever dlopen'ed (RTLD_LOCAL), never linked: `ldd imagerate_cpu.node` shows
// no libopenblas, and a machine without it just reports {available: false, reason}.
#pragma once
#include <napi.h>

namespace imagerate {

void RegisterGemmBench(Napi::Env env, Napi::Object exports);

}  // namespace imagerate
