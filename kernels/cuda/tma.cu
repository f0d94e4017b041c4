// tma.cu: host side of tma.cuh: tensor maps for the TMA copy engine, built by the driver's
// cuTensorMapEncodeTiled. The addon links the CUDA runtime only (it must load where there is no
// driver: PLATFORM.md), so the driver function is looked up at run time through the runtime's
// cudaGetDriverEntryPointByVersion, once per process.
#include <cuda.h>
#include <cuda_runtime.h>

#include <mutex>

#include "tma.cuh"

namespace imagerate {
namespace cuda {
namespace {

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiled encode_tiled() {
  static std::once_flag once;
  static EncodeTiled fn = nullptr;
  std::call_once(once, [] {
#if CUDART_VERSION >= 12000
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;  // until the call says
#if CUDART_VERSION >= 12050
    // 12000: the function's CUDA 12.0 signature (the one declared above).
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q);
#elif CUDART_VERSION >= 12000
    // Toolkits 12.0-12.4 (a GPU machine may build with one): the runtime's own version picks it.
    const cudaError_t e = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &p, cudaEnableDefault, &q);
#endif
    if (e == cudaSuccess && q == cudaDriverEntryPointSuccess && p)
      fn = reinterpret_cast<EncodeTiled>(p);
    else
      cudaGetLastError();  // not sticky, but leave no error for the next launch check to report
#endif  // before CUDA 12.0 there are no tensor maps: fn stays null
  });
  return fn;
}

}  // namespace

bool tma_encode_f32_2d(tma::Map* out, const float* base, int64_t rows, int64_t cols, int64_t ld, int box_rows,
                       int box_cols) {
  static_assert(sizeof(tma::Map) == sizeof(CUtensorMap) && alignof(tma::Map) >= alignof(CUtensorMap),
                "tma::Map is a CUtensorMap");
  const EncodeTiled fn = encode_tiled();
  if (!fn || rows <= 0 || cols <= 0 || ld < cols) return false;
  const cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows};   // innermost first
  const cuuint64_t strides[1] = {(cuuint64_t)ld * sizeof(float)};    // bytes between rows
  const cuuint32_t box[2] = {(cuuint32_t)box_cols, (cuuint32_t)box_rows};
  const cuuint32_t elem_strides[2] = {1, 1};
  return fn(reinterpret_cast<CUtensorMap*>(out), CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, const_cast<float*>(base), dims,
            strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
            CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace cuda
}  // namespace imagerate
