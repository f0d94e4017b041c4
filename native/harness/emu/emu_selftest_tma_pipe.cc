// emu_selftest_tma_pipe.cc: part of the TMA model's self-test (emu_selftest_tma.cc says what it
// covers): wgmma fed by TMA copies in a pipeline, and dynamic shared memory with its limits.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "emu_selftest_tma.h"
#include "wgmma.cuh"

namespace {

using namespace emu_test;
using imagerate::cuda::MathMode;

// ------------------------------------------------------------ TMA -> wgmma, one group in flight
// A (kM rows) and B (kN rows) row-major with k contiguous, kK valid k of kTiles * 16: rows and k
// past them are the copies' zero fill. Stage s holds A then B, each 4 boxes {4 floats, 128 rows}
// (one 16-byte k chunk, 2048 bytes: LBO 2048, SBO 128), 8 KiB apiece; one mbarrier per stage.
constexpr int kM = 100, kN = 120, kK = 46, kTiles = 3, kLdk = 48;
constexpr uint32_t kChunk = 2048, kOp = 4 * kChunk, kStage = 2 * kOp;
float a_val(int m, int k) { return (float)(((m * 3 + k * 5) % 9) - 4) * 0.25f; }
float b_val(int n, int k) { return (float)(((n * 7 + k * 3) % 11) - 5) * 0.125f; }

enum PipeBug { kPipeOk, kPipeTwoStages, kPipeWriteAcc };

// stages: 3 (correct: tile kt + 1 goes into the stage of tile kt - 2, whose group the previous
// iteration's wait_group 1 completed) or 2 (wrong: the stage of tile kt - 1, still pending).
__global__ void pipe_kernel(const __grid_constant__ tma::Map ma, const __grid_constant__ tma::Map mb, int stages,
                            int bug, float* out) {
  unsigned char* smem = static_cast<unsigned char*>(emu::shared_dynamic(128));
  const int tid = (int)threadIdx.x, wgi = tid / 128;
  const uint32_t base = wg::smem_addr(smem), bars = base + (uint32_t)stages * kStage;
  tma::init_barriers(bars, stages, tid);
  auto issue = [&](int kt) {
    const int s = kt % stages;
    const uint32_t a = base + (uint32_t)s * kStage, b = a + kOp, bar = bars + 8 * s;
    tma::mbar_expect_tx(bar, kStage);
    for (int j = 0; j < 4; ++j) {
      tma::load_2d(a + j * kChunk, &ma, 16 * kt + 4 * j, 0, bar);
      tma::load_2d(b + j * kChunk, &mb, 16 * kt + 4 * j, 0, bar);
    }
  };
  if (tid == 0) issue(0);
  float d[64] = {};
  for (int kt = 0; kt < kTiles; ++kt) {
    const int s = kt % stages;
    tma::mbar_wait(bars + 8 * s, (uint32_t)(kt / stages) & 1u);
    __syncthreads();  // every warp is past the previous iteration's wait_group 1
    if (tid == 0 && kt + 1 < kTiles) issue(kt + 1);
    const uint32_t a_addr = base + (uint32_t)s * kStage + (uint32_t)wgi * 8 * 128, b_addr = base + (uint32_t)s * kStage + kOp;
    wg::fence();
    for (int ks = 0; ks < 2; ++ks)  // k chunks 2 ks, 2 ks + 1: 8 tf32 values
      wg::mma_m64n128<MathMode::TF32>(d, wg::desc(a_addr + ks * 2 * kChunk, kChunk, 128),
                                      wg::desc(b_addr + ks * 2 * kChunk, kChunk, 128), 1);
    wg::commit();
    wg::wait_1();  // tile kt's group stays in flight; the next tile chains into the same d
    if (bug == kPipeWriteAcc && kt == 1) d[5] = 0.f;  // the thread writes d while tile 1's group is pending
  }
  wg::wait_all();
  for (int i = 0; i < 64; ++i) {  // the accumulator fragment (9.7.15.5.1.1)
    const int warp = (tid / 32) % 4, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int row = 64 * wgi + 16 * warp + g + 8 * ((i % 4) / 2), col = 8 * (i / 4) + 2 * t + i % 2;
    out[row * 128 + col] = d[i];
  }
}

// "" when every accumulator is exact; with bug set, the kernel faults first.
std::string run_pipe(int stages, int bug) {
  std::vector<float> a((size_t)kM * kLdk, 9.f), b((size_t)kN * kLdk, 9.f);  // 9: past k < kK, never read
  for (int m = 0; m < kM; ++m)
    for (int k = 0; k < kK; ++k) a[(size_t)m * kLdk + k] = a_val(m, k);
  for (int n = 0; n < kN; ++n)
    for (int k = 0; k < kK; ++k) b[(size_t)n * kLdk + k] = b_val(n, k);
  float* da = device_floats(a);
  float* db = device_floats(b);
  tma::Map ma, mb;
  if (encode_2d(&ma, da, kK, kM, kLdk * 4, 4, 128) != CUDA_SUCCESS || encode_2d(&mb, db, kK, kN, kLdk * 4, 4, 128))
    return "encode failed";
  const size_t smem = (size_t)stages * kStage + 8 * (size_t)stages;
  if (cudaFuncSetAttribute(&pipe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) != cudaSuccess)
    return "cudaFuncSetAttribute refused " + std::to_string(smem) + " bytes";
  float* out = device_floats(std::vector<float>(128 * 128, 7.f));
  emu::launch("tma_selftest_pipeline", dim3(1), dim3(256), smem, nullptr, &pipe_kernel, ma, mb, stages, bug, out);
  if (cudaGetLastError() != cudaSuccess) return "the launch failed";
  const std::vector<float> got = host_floats(out, 128 * 128);
  for (int m = 0; m < 128; ++m)
    for (int n = 0; n < 128; ++n) {
      double want = 0.0;  // exact: multiples of 1/32 below 2^5
      for (int k = 0; m < kM && n < kN && k < kK; ++k) want += (double)a_val(m, k) * b_val(n, k);
      if (!(got[(size_t)m * 128 + n] == (float)want))
        return "D(" + std::to_string(m) + ", " + std::to_string(n) + ") = " + std::to_string(got[(size_t)m * 128 + n]) +
               ", want " + std::to_string(want);
    }
  return "";
}

// ------------------------------------------------------------ dynamic shared memory
// Each block: the region's window address, and whether its first and last bytes are NaN bytes
// (0xFF) before the block writes them.
__global__ void dyn_kernel(uint32_t bytes, uint32_t* out) {
  unsigned char* d = static_cast<unsigned char*>(emu::shared_dynamic(128));
  __syncthreads();
  if (threadIdx.x == 0) {
    out[2 * blockIdx.x] = wg::smem_addr(d);
    out[2 * blockIdx.x + 1] = d[0] == 0xFF && d[bytes - 1] == 0xFF;
    d[0] = d[bytes - 1] = 0;
  }
}
__global__ void dyn_kernel_b(uint32_t bytes, uint32_t* out) { dyn_kernel(bytes, out); }

// A launch of `bytes`: "ran" (and the blocks' findings good), "refused" (cudaErrorInvalidValue,
// nothing ran), or what went wrong.
std::string launch_dyn(void (*k)(uint32_t, uint32_t*), size_t bytes) {
  void* out = nullptr;
  cudaMalloc(&out, 16);
  cudaMemset(out, 0x55, 16);
  cudaGetLastError();
  emu::launch("tma_selftest_dynamic", dim3(2), dim3(32), bytes, nullptr, k, (uint32_t)bytes, (uint32_t*)out);
  const cudaError_t e = cudaGetLastError();
  uint32_t r[4];
  cudaMemcpy(r, out, 16, cudaMemcpyDeviceToHost);
  cudaFree(out);
  if (e == cudaErrorInvalidValue) return r[0] == 0x55555555u ? "refused" : "refused, but the kernel ran";
  if (e != cudaSuccess) return std::string("launch error ") + cudaGetErrorName(e);
  if (r[0] != r[2] || r[0] < 1024 || r[0] % 128 || (r[0] / 128) % 2 == 0)
    return "window address 0x" + std::to_string(r[0]) + " is not an odd multiple of 128 (or differs by block)";
  if (!r[1] || !r[3]) return "a block found its dynamic shared memory not filled with NaN bytes";
  return "ran";
}

__global__ void static_plus_dynamic(uint32_t bytes) {
  __shared__ __align__(16) float big[10240];  // 40 KiB static
  emu::shared_fresh(big, sizeof big, __alignof__(big));
  (void)emu::shared_dynamic(16);
  (void)bytes;
}

}  // namespace

void emu_test::check_tma_wgmma(Tally& t) {
  expect_pass(t, "TMA-fed wgmma m64n128k8 tf32, 3 stages, wait_group 1 chaining into the accumulators: exact",
              [] { return run_pipe(3, kPipeOk); });
  expect_fault(t, "fault: a copy into the stage a pending wgmma group reads (a 2-stage ring)", "tma_selftest_pipeline",
               {"which a wgmma.mma_async of warp"}, [] { run_pipe(2, kPipeOk); });
  expect_fault(t, "fault: a thread writes its accumulators while a group is pending after wait_group 1",
               "tma_selftest_pipeline", {"accumulator registers written"}, [] { run_pipe(3, kPipeWriteAcc); });
}

void emu_test::check_dynamic_smem(Tally& t) {
  auto check = [&](const std::string& name, const std::string& want, const std::function<std::string()>& f) {
    expect_pass(t, name, [&] {
      const std::string got = f();
      return got == want ? std::string() : "got \"" + got + "\", want \"" + want + "\"";
    });
  };
  auto attr = [](void (*k)(uint32_t, uint32_t*), int v) {
    return cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, v);
  };
  check("dynamic smem: 48 KiB runs without the attribute (odd multiple of 128, NaN in each block)", "ran",
        [] { return launch_dyn(&dyn_kernel, 49152); });
  check("dynamic smem: 48 KiB + 1 without the attribute is refused (cudaErrorInvalidValue)", "refused",
        [] { return launch_dyn(&dyn_kernel, 49153); });
  check("dynamic smem: 100 KiB runs once cudaFuncSetAttribute allows it", "ran", [&] {
    return attr(&dyn_kernel, 102400) == cudaSuccess ? launch_dyn(&dyn_kernel, 102400) : "attribute refused";
  });
  check("dynamic smem: above the attribute is refused; the attribute is per kernel", "refused refused", [&] {
    if (attr(&dyn_kernel, 102400) != cudaSuccess) return std::string("attribute refused");
    return launch_dyn(&dyn_kernel, 102401) + " " + launch_dyn(&dyn_kernel_b, 102400);
  });
  check("dynamic smem: the attribute takes 232448 (227 KiB) and refuses 232449; a launch of 232449 is refused",
        "1 0 ran refused", [&] {
          const cudaError_t over = attr(&dyn_kernel, 232449);
          const bool last = cudaGetLastError() == cudaErrorInvalidValue;
          const cudaError_t max = attr(&dyn_kernel, 232448);
          const std::string at_max = launch_dyn(&dyn_kernel, 232448), past = launch_dyn(&dyn_kernel, 232449);
          return std::to_string(over == cudaErrorInvalidValue && last) + " " + std::to_string(max != cudaSuccess) + " " +
                 at_max + " " + past;
        });
  check("cudaFuncSetAttribute: the carveout hint is taken, other attributes are cudaErrorInvalidValue", "0 1", [] {
    const cudaError_t a = cudaFuncSetAttribute(&dyn_kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 50);
    const cudaError_t b = cudaFuncSetAttribute(&dyn_kernel, (cudaFuncAttribute)10, 1);
    return std::to_string((int)a) + " " + std::to_string(b == cudaErrorInvalidValue);
  });
  expect_fault(t, "fault: 40 KiB of static arrays plus 16 KiB dynamic, no attribute (CUDA refuses the launch)",
               "tma_selftest_static_dynamic", {"exceed the default 48 KiB"}, [] {
                 emu::launch("tma_selftest_static_dynamic", dim3(1), dim3(32), 16384, nullptr, &static_plus_dynamic,
                             16384u);
               });
}
