// emu_selftest_tma.h: what the files of the TMA model's self-test share (emu_selftest_tma.cc runs
// them: --selftest-tma).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda.h"
#include "cudaTypedefs.h"
#include "emu_selftest.h"
#include "tma.cuh"

namespace tma = imagerate::cuda::tma;
namespace wg = imagerate::cuda::wg;

namespace emu_test {

float* device_floats(const std::vector<float>& v);
std::vector<float> host_floats(const float* d, size_t n);
// cuTensorMapEncodeTiled as tma.cu reaches it (the runtime's entry point).
PFN_cuTensorMapEncodeTiled_v12000 encoder();
// A 2-D fp32 map: `rows` rows of `cols` floats, row_bytes apart; boxes of box_rows x box_cols.
CUresult encode_2d(tma::Map* m, const void* base, uint64_t cols, uint64_t rows, uint64_t row_bytes, uint32_t box_cols,
                   uint32_t box_rows);

void check_encoder(Tally& t);       // emu_selftest_tma.cc
void check_tma_wgmma(Tally& t);     // emu_selftest_tma_pipe.cc
void check_dynamic_smem(Tally& t);  // emu_selftest_tma_pipe.cc
void check_tma_faults(Tally& t);    // emu_selftest_tma_faults.cc

}  // namespace emu_test
