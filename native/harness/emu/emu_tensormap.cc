// emu_tensormap.cc: the emulator's cuTensorMapEncodeTiled (the CUDA driver API's "Tensor Map
// Object Management"; reached through cudaGetDriverEntryPointByVersion, emu_api.cc) and the
// decoding of its maps for the copy engine's model (emu_tma.cc).
//
// Validation, from the function's documentation in the driver API reference (cuda.h, CUDA 13.0);
// any violation returns CUDA_ERROR_INVALID_VALUE and leaves the map untouched:
//   - tensorMap 64-byte aligned; tensorDataType one of the enum's 16 values;
//   - tensorRank 1..5, and >= 3 when interleaved;
//   - globalAddress 16-byte aligned (32 with INTERLEAVE_32B or the 16U6/16U4_ALIGN16B types);
//   - globalDim[i] 1..2^32 (packed types: globalDim[0] a multiple of 128, or of 2 for 16U4_ALIGN8B);
//   - globalStrides[i] (rank - 1 of them, bytes) a multiple of 16 (32 when interleaved 32B or with
//     the ALIGN16B types) and below 2^40, laid out as the documentation's formula has it: stride[0]
//     >= globalDim[0] * element size, stride[i] >= stride[i - 1] * globalDim[i];
//   - boxDim[i] 1..256, boxDim[0] * element size a multiple of 16 bytes without interleave (128
//     elements for the ALIGN16B types); elementStrides[i] 1..8;
//   - INTERLEAVE_32B needs SWIZZLE_32B; without interleave a swizzle needs the box's inner
//     dimension (boxDim[0] * element size) within the swizzle span (32, 64 or 128 bytes);
//     16U6_ALIGN16B needs INTERLEAVE_NONE; the NaN fill needs a floating-point type.
// Valid arguments the emulator does not model stop the program (EMU FAULT) instead of producing
// a map the copy would get wrong: swizzles, interleaves, element strides other than 1 beyond
// dimension 0 (whose stride the documentation says is ignored without interleave), the NaN fill,
// and the FTZ, TF32 and packed sub-byte types (which may convert or pack). What remains copies
// 1-, 2-, 4- or 8-byte elements as they are.
//
// The 128 opaque bytes of a map made here: a magic number, the parameters, and a checksum of
// both, so that the copy's model can tell a map of this encoder (copied by value, as a
// __grid_constant__ kernel parameter is) from any other bytes.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cuda.h"
#include "emu_internal.h"

namespace emu {
namespace {

constexpr uint64_t kMagic = 0x31504D54554D45ull;  // "EMUTMP1"
constexpr int kSize[16] = {1, 2, 4, 4, 8, 8, 2, 4, 8, 2, 4, 4, 4, 0, 0, 0};  // bytes per element; 0: packed
const char* const kTypeName[16] = {"UINT8",        "UINT16",        "UINT32",        "INT32",    "UINT64",
                                   "INT64",        "FLOAT16",       "FLOAT32",       "FLOAT64",  "BFLOAT16",
                                   "FLOAT32_FTZ",  "TFLOAT32",      "TFLOAT32_FTZ",  "16U4_ALIGN8B",
                                   "16U4_ALIGN16B", "16U6_ALIGN16B"};

uint64_t checksum(const uint64_t* q) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 15; ++i) {
    h ^= q[i];
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h;
}

// Why the arguments are invalid per the documentation, or null.
const char* invalid(const CUtensorMap* map, int type, unsigned rank, const void* global, const cuuint64_t* dim,
                    const cuuint64_t* stride, const cuuint32_t* box, const cuuint32_t* estride, int il, int sw, int l2,
                    int oob) {
  static char why[200];
  if (!map || (uintptr_t)map % 64) return "tensorMap is not 64-byte aligned";
  if (type < 0 || type > 15) return "tensorDataType is not a CUtensorMapDataType";
  if (rank < 1 || rank > 5) return "tensorRank is not 1..5";
  if (il < 0 || il > 2 || sw < 0 || sw > 6 || l2 < 0 || l2 > 3 || oob < 0 || oob > 1) return "an enum argument is out of range";
  if (il != CU_TENSOR_MAP_INTERLEAVE_NONE && rank < 3) return "an interleaved layout needs tensorRank >= 3";
  const bool align16b = type == CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN16B || type == CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B;
  const unsigned galign = il == CU_TENSOR_MAP_INTERLEAVE_32B || align16b ? 32 : 16;
  if ((uintptr_t)global % galign) {
    std::snprintf(why, sizeof why, "globalAddress %p is not %u-byte aligned", global, galign);
    return why;
  }
  if (!dim || (rank > 1 && !stride) || !box || !estride) return "a null array argument";
  const uint64_t esize = (uint64_t)kSize[type];
  for (unsigned i = 0; i < rank; ++i) {
    if (dim[i] == 0 || dim[i] > (1ull << 32)) {
      std::snprintf(why, sizeof why, "globalDim[%u] = %llu is not 1..2^32", i, (unsigned long long)dim[i]);
      return why;
    }
    if (box[i] == 0 || box[i] > 256) {
      std::snprintf(why, sizeof why, "boxDim[%u] = %u is not 1..256", i, box[i]);
      return why;
    }
    if (estride[i] == 0 || estride[i] > 8) {
      std::snprintf(why, sizeof why, "elementStrides[%u] = %u is not 1..8", i, estride[i]);
      return why;
    }
  }
  if (align16b && dim[0] % 128) return "globalDim[0] of an ALIGN16B packed type is not a multiple of 128";
  if (type == CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN8B && dim[0] % 2) return "globalDim[0] of 16U4_ALIGN8B is odd";
  const unsigned salign = il == CU_TENSOR_MAP_INTERLEAVE_32B || align16b ? 32 : 16;
  for (unsigned i = 0; i + 1 < rank; ++i) {
    if (stride[i] % salign || stride[i] >= (1ull << 40)) {
      std::snprintf(why, sizeof why, "globalStrides[%u] = %llu is not a multiple of %u below 2^40", i,
                    (unsigned long long)stride[i], salign);
      return why;
    }
    const uint64_t under = i == 0 ? dim[0] * esize : stride[i - 1] * dim[i];
    if (esize && stride[i] < under) {
      std::snprintf(why, sizeof why, "globalStrides[%u] = %llu is less than the %llu bytes of the dimensions under it",
                    i, (unsigned long long)stride[i], (unsigned long long)under);
      return why;
    }
  }
  if (il == CU_TENSOR_MAP_INTERLEAVE_NONE && esize && box[0] * esize % 16) {
    std::snprintf(why, sizeof why, "boxDim[0] * %llu = %llu bytes is not a multiple of 16", (unsigned long long)esize,
                  (unsigned long long)(box[0] * esize));
    return why;
  }
  if (align16b && box[0] != 128) return "boxDim[0] of an ALIGN16B packed type is not 128";
  if (il == CU_TENSOR_MAP_INTERLEAVE_32B && sw != CU_TENSOR_MAP_SWIZZLE_32B) return "INTERLEAVE_32B needs SWIZZLE_32B";
  if (il == CU_TENSOR_MAP_INTERLEAVE_NONE && sw != CU_TENSOR_MAP_SWIZZLE_NONE && esize) {
    const uint64_t span = sw == CU_TENSOR_MAP_SWIZZLE_32B ? 32 : sw == CU_TENSOR_MAP_SWIZZLE_64B ? 64 : 128;
    if (box[0] * esize > span) {
      std::snprintf(why, sizeof why, "the box's inner dimension (%llu bytes) exceeds the swizzle span (%llu bytes)",
                    (unsigned long long)(box[0] * esize), (unsigned long long)span);
      return why;
    }
  }
  if (type == CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B && il != CU_TENSOR_MAP_INTERLEAVE_NONE)
    return "16U6_ALIGN16B needs INTERLEAVE_NONE";
  const bool is_float = type >= CU_TENSOR_MAP_DATA_TYPE_FLOAT16 && type <= CU_TENSOR_MAP_DATA_TYPE_TFLOAT32_FTZ;
  if (oob == CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA && !is_float)
    return "the NaN fill needs a floating-point tensorDataType";
  return nullptr;
}

// Valid arguments the model does not cover: a fault rather than a map the copy would get wrong.
void require_modelled(int type, unsigned rank, const cuuint32_t* estride, int il, int sw, int oob) {
  char what[160] = "";
  if (kSize[type] == 0 || type >= CU_TENSOR_MAP_DATA_TYPE_FLOAT32_FTZ)
    std::snprintf(what, sizeof what, "tensorDataType %s (FTZ, TF32 and packed types may convert)", kTypeName[type]);
  else if (il != CU_TENSOR_MAP_INTERLEAVE_NONE)
    std::snprintf(what, sizeof what, "interleave %d", il);
  else if (sw != CU_TENSOR_MAP_SWIZZLE_NONE)
    std::snprintf(what, sizeof what, "swizzle %d (only CU_TENSOR_MAP_SWIZZLE_NONE is modelled)", sw);
  else if (oob != CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE)
    std::snprintf(what, sizeof what, "the OOB NaN fill");
  for (unsigned i = 1; !what[0] && i < rank; ++i)
    if (estride[i] != 1) std::snprintf(what, sizeof what, "elementStrides[%u] = %u (only 1 is modelled)", i, estride[i]);
  if (!what[0]) return;
  std::fprintf(stderr, "EMU FAULT in cuTensorMapEncodeTiled: valid arguments the emulator does not model: %s\n", what);
  std::abort();
}

}  // namespace

bool tensormap_decode(const void* map, TensorMapDesc* d) {
  uint64_t q[16];
  std::memcpy(q, map, sizeof q);
  if (q[0] != kMagic || q[15] != checksum(q)) return false;
  *d = TensorMapDesc{};
  d->global = q[1];
  d->dtype = (int)(q[2] & 0xff);
  d->rank = (int)((q[2] >> 8) & 0xff);
  d->elem_bytes = (int)((q[2] >> 16) & 0xff);
  d->interleave = (int)((q[2] >> 24) & 0xff);
  d->swizzle = (int)((q[2] >> 32) & 0xff);
  d->l2 = (int)((q[2] >> 40) & 0xff);
  d->oob = (int)((q[2] >> 48) & 0xff);
  for (int i = 0; i < 5; ++i) {
    d->dim[i] = q[3 + i];
    d->stride[i] = i == 0 ? (uint64_t)d->elem_bytes : q[7 + i];
    d->box[i] = (uint32_t)((q[12] >> (9 * i)) & 0x1ff);
    d->elem_stride[i] = (uint32_t)((q[13] >> (4 * i)) & 0xf);
  }
  return true;
}

void* driver_entry_point(const char* symbol, unsigned* introduced) {
  if (std::strcmp(symbol, "cuTensorMapEncodeTiled") != 0) return nullptr;
  *introduced = 12000;  // CUDA 12.0
  return reinterpret_cast<void*>(&cuTensorMapEncodeTiled);
}

}  // namespace emu

extern "C" CUresult CUDAAPI cuTensorMapEncodeTiled(CUtensorMap* map, CUtensorMapDataType type, cuuint32_t rank,
                                                   void* global, const cuuint64_t* dim, const cuuint64_t* stride,
                                                   const cuuint32_t* box, const cuuint32_t* estride,
                                                   CUtensorMapInterleave il, CUtensorMapSwizzle sw,
                                                   CUtensorMapL2promotion l2, CUtensorMapFloatOOBfill oob) {
  if (const char* why = emu::invalid(map, type, rank, global, dim, stride, box, estride, il, sw, l2, oob)) {
    std::fprintf(stderr, "EMU: cuTensorMapEncodeTiled: CUDA_ERROR_INVALID_VALUE: %s\n", why);
    return CUDA_ERROR_INVALID_VALUE;
  }
  emu::require_modelled(type, rank, estride, il, sw, oob);
  uint64_t q[16] = {};
  q[0] = emu::kMagic;
  q[1] = (uint64_t)(uintptr_t)global;
  q[2] = (uint64_t)type | (uint64_t)rank << 8 | (uint64_t)emu::kSize[type] << 16 | (uint64_t)il << 24 |
         (uint64_t)sw << 32 | (uint64_t)l2 << 40 | (uint64_t)oob << 48;
  for (unsigned i = 0; i < rank; ++i) {
    q[3 + i] = dim[i];
    if (i > 0) q[7 + i] = stride[i - 1];
    q[12] |= (uint64_t)box[i] << (9 * i);
    q[13] |= (uint64_t)estride[i] << (4 * i);
  }
  q[15] = emu::checksum(q);
  std::memcpy(static_cast<void*>(map), q, sizeof q);  // 64-byte aligned is enough (not the type's 128)
  return CUDA_SUCCESS;
}
