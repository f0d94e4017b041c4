// emu_selftest_tma.cc: the TMA model's own checks (imagerate_cuda_emu --selftest-tma; CI runs it
// beside --selftest-wgmma): the mbarrier and cp.async.bulk.tensor model (emu_tma.cc), the
// tensor-map encoder (emu_tensormap.cc), dynamic shared memory and its limits (emu_shared.cc), and
// wgmma fed by the copies, independent of the GEMM kernel that uses them. Compiled like the
// kernels, it calls tma.cuh's and wgmma.cuh's functions as transform.py rewrote them; the test
// writes what transform.py would (emu::shared_dynamic for extern __shared__) and places the boxes
// and descriptors itself, from the documentation (emu_tma.cc's header lists the readings):
//   - the driver entry point (found, too old a version, unknown symbol, a version above the driver's)
//     and cuTensorMapEncodeTiled's refusals, one per documented rule, and its faults for valid
//     arguments it does not model;
//   - boxes of a 37 x 50 fp32 matrix (row stride 52): inside, across the right and bottom edges,
//     at negative coordinates and wholly outside, several copies on one mbarrier, each box's
//     bytes counted in full; a read before the wait sees NaN, after it the data;
//   - a copy that lands before its expect_tx (tx-count negative, then zero at the arrive);
//   - an mbarrier reused over five phases: try_wait true for the completed phase's parity, false
//     for the current one (which is also the parity of a phase two back);
//   - wgmma m64n128k8 tf32 on operands the copies wrote, box {4 floats, 128 rows} per 16-byte k
//     chunk (chunk j at 2048 j: LBO 2048, SBO 128), rows and k past the matrices zero-filled, in a
//     3-stage pipeline that keeps one wgmma group in flight (wait_group 1) and chains every group
//     into the same accumulators: exact against a double reference;
//   - dynamic shared memory: addresses at odd multiples of the declared alignment, NaN bytes in
//     every block, the 48 KiB default and cudaFuncSetAttribute's limit (per kernel, up to 232448);
//   - every fault of the model (emu_selftest_tma_faults.cc).
// Each case runs in a forked child, so that a fault fails that case alone.
// Prints one line per check and "N passed, M failed"; returns 0 when all passed.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "emu_selftest_tma.h"

namespace emu_test {

float* device_floats(const std::vector<float>& v) {
  void* p = nullptr;
  cudaMalloc(&p, v.size() * sizeof(float));
  cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice);
  return (float*)p;
}

std::vector<float> host_floats(const float* d, size_t n) {
  std::vector<float> v(n);
  cudaMemcpy(v.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost);
  return v;
}

PFN_cuTensorMapEncodeTiled_v12000 encoder() {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult q{};
  if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) != cudaSuccess ||
      q != cudaDriverEntryPointSuccess)
    return nullptr;
  return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
}

CUresult encode_2d(tma::Map* m, const void* base, uint64_t cols, uint64_t rows, uint64_t row_bytes, uint32_t box_cols,
                   uint32_t box_rows) {
  const cuuint64_t dims[2] = {cols, rows}, strides[1] = {row_bytes};
  const cuuint32_t box[2] = {box_cols, box_rows}, es[2] = {1, 1};
  return encoder()(reinterpret_cast<CUtensorMap*>(m), CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, const_cast<void*>(base), dims,
                   strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                   CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
}

}  // namespace emu_test

namespace {

using namespace emu_test;

// ------------------------------------------------------------ driver entry points
void check_entry_points(Tally& t) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult q{};
  cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q);
  t.report(e == cudaSuccess && q == cudaDriverEntryPointSuccess && p == reinterpret_cast<void*>(&cuTensorMapEncodeTiled),
           "cudaGetDriverEntryPointByVersion finds cuTensorMapEncodeTiled at 12000");
  p = &q;
  e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 11080, cudaEnableDefault, &q);
  t.report(e == cudaSuccess && q == cudaDriverEntryPointVersionNotSufficent && !p,
           "... asked for CUDA 11.8: success, null, version not sufficient");
  p = &q;
  e = cudaGetDriverEntryPointByVersion("cuNoSuchFunction", &p, 12000, cudaEnableDefault, &q);
  t.report(e == cudaSuccess && q == cudaDriverEntryPointSymbolNotFound && !p, "... an unknown symbol: success, null, not found");
  e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 13010, cudaEnableDefault, &q);
  t.report(e == cudaErrorInvalidValue && cudaGetLastError() == cudaErrorInvalidValue,
           "... a version above the driver's (13.1 > 13.0): cudaErrorInvalidValue");
}

// ------------------------------------------------------------ the encoder's refusals
// The arguments of one cuTensorMapEncodeTiled call; valid as constructed (a 64 x 32 fp32 tensor).
struct Enc {
  CUtensorMapDataType type = CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  uint32_t rank = 2;
  size_t global_offset = 0, map_offset = 0;  // bytes added to the tensor's and the map's address
  cuuint64_t dim[5] = {64, 32, 2, 1, 1}, stride[4] = {256, 8192, 16384, 16384};
  cuuint32_t box[5] = {8, 16, 1, 1, 1}, es[5] = {1, 1, 1, 1, 1};
  CUtensorMapInterleave il = CU_TENSOR_MAP_INTERLEAVE_NONE;
  int sw = CU_TENSOR_MAP_SWIZZLE_NONE;
  CUtensorMapFloatOOBfill oob = CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE;
};

CUresult encode(const Enc& e, const void* global, unsigned char (&map)[256]) {
  std::memset(map, 0xAB, sizeof map);
  unsigned char* at = map + (64 - (uintptr_t)map % 64) % 64 + e.map_offset;
  return cuTensorMapEncodeTiled(reinterpret_cast<CUtensorMap*>(at), e.type, e.rank,
                                (unsigned char*)const_cast<void*>(global) + e.global_offset, e.dim, e.stride, e.box,
                                e.es, e.il, (CUtensorMapSwizzle)e.sw, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, e.oob);
}

template <class F>
Enc with(F f) {
  Enc e;
  f(e);
  return e;
}

}  // namespace

void emu_test::check_encoder(Tally& t) {
  void* global = nullptr;
  cudaMalloc(&global, 1 << 16);
  unsigned char map[256];
  t.report(encode(Enc{}, global, map) == CUDA_SUCCESS, "encoder: the valid arguments");
  struct Case {
    const char* name;
    Enc e;
    const char* want;  // in the emulator's message
  };
  const Case refused[] = {
      {"map not 64-byte aligned", with([](Enc& e) { e.map_offset = 16; }), "64-byte aligned"},
      {"global address not 16-byte aligned", with([](Enc& e) { e.global_offset = 4; }), "not 16-byte aligned"},
      {"rank 0", with([](Enc& e) { e.rank = 0; }), "tensorRank"},
      {"rank 6", with([](Enc& e) { e.rank = 6; }), "tensorRank"},
      {"globalDim 0", with([](Enc& e) { e.dim[1] = 0; }), "globalDim[1] = 0"},
      {"globalDim 2^32 + 1", with([](Enc& e) { e.dim[0] = (1ull << 32) + 1; }), "globalDim[0] = 4294967297"},
      {"stride not a multiple of 16", with([](Enc& e) { e.stride[0] = 264 - 4; }), "globalStrides[0] = 260"},
      {"stride of 2^40", with([](Enc& e) { e.stride[0] = 1ull << 40; }), "below 2^40"},
      {"stride under the row's bytes", with([](Enc& e) { e.stride[0] = 128; }), "less than the 256 bytes"},
      {"boxDim 0", with([](Enc& e) { e.box[1] = 0; }), "boxDim[1] = 0"},
      {"boxDim 257", with([](Enc& e) { e.box[1] = 257; }), "boxDim[1] = 257"},
      {"boxDim[0] of 12 bytes", with([](Enc& e) { e.box[0] = 3; }), "not a multiple of 16"},
      {"elementStrides 0", with([](Enc& e) { e.es[1] = 0; }), "elementStrides[1] = 0"},
      {"elementStrides 9", with([](Enc& e) { e.es[0] = 9; }), "elementStrides[0] = 9"},
      {"interleave at rank 2", with([](Enc& e) { e.il = CU_TENSOR_MAP_INTERLEAVE_16B; }), "tensorRank >= 3"},
      {"INTERLEAVE_32B without SWIZZLE_32B", with([](Enc& e) {
         e.rank = 3, e.il = CU_TENSOR_MAP_INTERLEAVE_32B;
       }),
       "needs SWIZZLE_32B"},
      {"SWIZZLE_32B with a 64-byte inner box", with([](Enc& e) { e.sw = CU_TENSOR_MAP_SWIZZLE_32B, e.box[0] = 16; }),
       "exceeds the swizzle span"},
      {"swizzle 7 (no such mode)", with([](Enc& e) { e.sw = 7; }), "out of range"},
      {"NaN fill of an integer type", with([](Enc& e) {
         e.type = CU_TENSOR_MAP_DATA_TYPE_UINT32, e.oob = CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA;
       }),
       "floating-point"},
  };
  // Each in a child: CUDA_ERROR_INVALID_VALUE, the map's bytes untouched, and the emulator's
  // message (stderr) naming the rule.
  for (const Case& c : refused) {
    std::string err;
    int status = -1;
    bool aborted = false;
    run_child(
        [&] {
          unsigned char m[256];
          const CUresult r = encode(c.e, global, m);
          bool untouched = true;
          for (unsigned char b : m) untouched = untouched && b == 0xAB;
          return r == CUDA_ERROR_INVALID_VALUE && untouched ? 0 : 1;
        },
        &err, &status, &aborted);
    const bool ok = status == 0 && err.find(c.want) != std::string::npos;
    t.report(ok, std::string("encoder refuses (CUDA_ERROR_INVALID_VALUE, map untouched): ") + c.name,
             ok ? "" : err.substr(0, err.find('\n')));
  }
  const Case unmodelled[] = {
      {"SWIZZLE_128B", with([](Enc& e) { e.sw = CU_TENSOR_MAP_SWIZZLE_128B, e.box[0] = 32; }), "swizzle 3"},
      {"elementStrides {1, 2}", with([](Enc& e) { e.es[1] = 2; }), "elementStrides[1] = 2"},
      {"TFLOAT32", with([](Enc& e) { e.type = CU_TENSOR_MAP_DATA_TYPE_TFLOAT32; }), "TFLOAT32"},
      {"the NaN fill", with([](Enc& e) { e.oob = CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA; }), "NaN fill"},
  };
  for (const Case& c : unmodelled)
    expect_fault(t, std::string("encoder stops on valid arguments it does not model: ") + c.name,
                 "cuTensorMapEncodeTiled", {c.want}, [&] {
                   unsigned char m[256];
                   encode(c.e, global, m);
                 });
  cudaFree(global);
}

namespace {

// ------------------------------------------------------------ box copies
constexpr int kRows = 37, kCols = 50, kLd = 52;  // row stride 208 bytes
float mat(int r, int c) { return (float)(r * 100 + c) + 0.5f; }

std::vector<float> matrix() {
  std::vector<float> a((size_t)kRows * kLd, -1.f);
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kCols; ++c) a[(size_t)r * kLd + c] = mat(r, c);
  return a;
}

float want(int c0, int c1, int r, int c) {
  const int row = c1 + r, col = c0 + c;
  return row >= 0 && row < kRows && col >= 0 && col < kCols ? mat(row, col) : 0.f;
}

struct Boxes {
  int n;
  int c0[8], c1[8];
};
constexpr int kBoxCols = 8, kBoxRows = 16, kBoxFloats = kBoxCols * kBoxRows, kBoxBytes = kBoxFloats * 4;

// Thread 0 issues the n boxes on one mbarrier (one expect_tx of all their bytes), reads its first
// word before waiting; every thread waits, then the boxes go to out.
__global__ void box_kernel(const __grid_constant__ tma::Map map, Boxes bx, float* out, float* early) {
  unsigned char* smem = static_cast<unsigned char*>(emu::shared_dynamic(128));
  const int tid = (int)threadIdx.x;
  const uint32_t base = wg::smem_addr(smem), bar = base + (uint32_t)(bx.n * kBoxBytes);
  tma::init_barriers(bar, 1, tid);
  if (tid == 0) {
    tma::mbar_expect_tx(bar, (uint32_t)(bx.n * kBoxBytes));
    for (int i = 0; i < bx.n; ++i) tma::load_2d(base + (uint32_t)(i * kBoxBytes), &map, bx.c0[i], bx.c1[i], bar);
    std::memcpy(early, smem, 4);  // before the wait: what was there at the issue
  }
  tma::mbar_wait(bar, 0);
  const float* s = reinterpret_cast<const float*>(smem);
  for (int i = tid; i < bx.n * kBoxFloats; i += (int)blockDim.x) out[i] = s[i];
}

std::string compare_boxes(const Boxes& bx, const std::vector<float>& got) {
  for (int i = 0; i < bx.n; ++i)
    for (int r = 0; r < kBoxRows; ++r)
      for (int c = 0; c < kBoxCols; ++c) {
        const float w = want(bx.c0[i], bx.c1[i], r, c), g = got[(size_t)i * kBoxFloats + r * kBoxCols + c];
        if (!(g == w))
          return "box " + std::to_string(i) + " at (" + std::to_string(bx.c0[i]) + ", " + std::to_string(bx.c1[i]) +
                 ") element (" + std::to_string(r) + ", " + std::to_string(c) + ") = " + std::to_string(g) +
                 ", want " + std::to_string(w);
      }
  return "";
}

std::string run_boxes() {
  const std::vector<float> a = matrix();
  float* da = device_floats(a);
  tma::Map map;
  if (encode_2d(&map, da, kCols, kRows, kLd * 4, kBoxCols, kBoxRows) != CUDA_SUCCESS) return "encode failed";
  // inside; across the right edge; across the bottom; the corner; negative; wholly outside (right,
  // below, far negative)
  const Boxes bx{8, {8, 48, 16, 48, -3, 50, 0, -100}, {4, 2, 32, 30, -5, 0, 37, -100}};
  float* out = device_floats(std::vector<float>((size_t)bx.n * kBoxFloats, 7.f));
  float* early = device_floats({7.f});
  emu::launch("tma_selftest_boxes", dim3(1), dim3(64), (size_t)(bx.n * kBoxBytes + 8), nullptr, &box_kernel, map, bx,
              out, early);
  const std::string why = compare_boxes(bx, host_floats(out, (size_t)bx.n * kBoxFloats));
  const float pre = host_floats(early, 1)[0];
  if (!why.empty()) return why;
  uint32_t bits;
  std::memcpy(&bits, &pre, 4);
  if (bits != 0xFFFFFFFFu) return "the read before the wait saw " + std::to_string(pre) + ", not the NaN bytes";
  return "";
}

// ------------------------------------------------------------ a copy landing before expect_tx
__global__ void early_kernel(const __grid_constant__ tma::Map map, float* out, uint32_t* flag) {
  unsigned char* smem = static_cast<unsigned char*>(emu::shared_dynamic(128));
  const int tid = (int)threadIdx.x;
  const uint32_t base = wg::smem_addr(smem), bar = base + kBoxBytes;
  tma::init_barriers(bar, 1, tid);
  if (tid == 0) tma::load_2d(base, &map, 8, 4, bar);  // no expect_tx yet
  __syncthreads();
  if (tid == 1) flag[0] = tma::mbar_try_wait(bar, 0) ? 1u : 0u;  // lands the copy: tx-count -512, an arrival missing
  __syncthreads();
  if (tid == 0) tma::mbar_expect_tx(bar, kBoxBytes);  // tx-count back to 0 and the arrival: phase 0 completes
  tma::mbar_wait(bar, 0);
  const float* s = reinterpret_cast<const float*>(smem);
  for (int i = tid; i < kBoxFloats; i += (int)blockDim.x) out[i] = s[i];
}

std::string run_early() {
  float* da = device_floats(matrix());
  tma::Map map;
  if (encode_2d(&map, da, kCols, kRows, kLd * 4, kBoxCols, kBoxRows) != CUDA_SUCCESS) return "encode failed";
  float* out = device_floats(std::vector<float>(kBoxFloats, 7.f));
  void* flag = nullptr;
  cudaMalloc(&flag, 4);
  cudaMemset(flag, 0x55, 4);
  emu::launch("tma_selftest_early", dim3(1), dim3(32), (size_t)kBoxBytes + 8, nullptr, &early_kernel, map, out,
              (uint32_t*)flag);
  uint32_t f = 0;
  cudaMemcpy(&f, flag, 4, cudaMemcpyDeviceToHost);
  if (f != 0) return "try_wait after the copy landed but before the arrive returned " + std::to_string(f);
  return compare_boxes(Boxes{1, {8}, {4}}, host_floats(out, kBoxFloats));
}

// ------------------------------------------------------------ one mbarrier over five phases
constexpr int kPhases = 5;
__global__ void phases_kernel(const __grid_constant__ tma::Map map, float* out, uint32_t* flags) {
  unsigned char* smem = static_cast<unsigned char*>(emu::shared_dynamic(128));
  const int tid = (int)threadIdx.x;
  const uint32_t base = wg::smem_addr(smem), bar = base + kBoxBytes;
  tma::init_barriers(bar, 1, tid);
  for (int p = 0; p < kPhases; ++p) {
    if (tid == 0) {
      tma::mbar_expect_tx(bar, kBoxBytes);
      tma::load_2d(base, &map, 8 * p, 3 * p, bar);
    }
    tma::mbar_wait(bar, (uint32_t)p & 1u);
    if (tid == 0) {
      flags[2 * p] = tma::mbar_try_wait(bar, (uint32_t)p & 1u) ? 1u : 0u;            // completed: true
      flags[2 * p + 1] = tma::mbar_try_wait(bar, (uint32_t)(p + 1) & 1u) ? 1u : 0u;  // current: false
    }
    const float* s = reinterpret_cast<const float*>(smem);
    for (int i = tid; i < kBoxFloats; i += (int)blockDim.x) out[p * kBoxFloats + i] = s[i];
    __syncthreads();  // every thread has read the box before the next copy overwrites it
  }
}

std::string run_phases() {
  float* da = device_floats(matrix());
  tma::Map map;
  if (encode_2d(&map, da, kCols, kRows, kLd * 4, kBoxCols, kBoxRows) != CUDA_SUCCESS) return "encode failed";
  float* out = device_floats(std::vector<float>((size_t)kPhases * kBoxFloats, 7.f));
  void* flags = nullptr;
  cudaMalloc(&flags, 8 * kPhases);
  cudaMemset(flags, 0x55, 8 * kPhases);
  emu::launch("tma_selftest_phases", dim3(1), dim3(64), (size_t)kBoxBytes + 8, nullptr, &phases_kernel, map, out,
              (uint32_t*)flags);
  uint32_t f[2 * kPhases];
  cudaMemcpy(f, flags, sizeof f, cudaMemcpyDeviceToHost);
  const std::vector<float> got = host_floats(out, (size_t)kPhases * kBoxFloats);
  for (int p = 0; p < kPhases; ++p) {
    if (f[2 * p] != 1 || f[2 * p + 1] != 0)
      return "phase " + std::to_string(p) + ": try_wait(completed parity) = " + std::to_string(f[2 * p]) +
             ", try_wait(current parity) = " + std::to_string(f[2 * p + 1]);
    const std::vector<float> one(got.begin() + p * kBoxFloats, got.begin() + (p + 1) * kBoxFloats);
    const std::string why = compare_boxes(Boxes{1, {8 * p}, {3 * p}}, one);
    if (!why.empty()) return "phase " + std::to_string(p) + ": " + why;
  }
  return "";
}

}  // namespace

int emu_selftest_tma() {
  Tally t{"tma"};
  check_entry_points(t);
  check_encoder(t);
  expect_pass(t, "boxes inside, across the right and bottom edges, negative and outside: data, zeros, full tx",
              run_boxes);
  expect_pass(t, "a copy landing before its expect_tx (tx-count below zero, then the arrive completes the phase)",
              run_early);
  expect_pass(t, "one mbarrier over 5 phases: parity waits, try_wait of the current parity false", run_phases);
  check_tma_wgmma(t);
  check_dynamic_smem(t);
  check_tma_faults(t);
  std::printf("%d passed, %d failed\n", t.passed, t.failed);
  return t.failed ? 1 : 0;
}
