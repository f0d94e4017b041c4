// cudaTypedefs.h (emulator stub): the driver-function pointer types of the toolkit's
// cudaTypedefs.h that the emulator provides functions for (cuda.h beside this file).
#pragma once
#include "cuda.h"

// cuTensorMapEncodeTiled, CUDA 12.0's signature (cudaGetDriverEntryPointByVersion(..., 12000, ...)).
typedef CUresult(CUDAAPI* PFN_cuTensorMapEncodeTiled_v12000)(
    CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank, void* globalAddress,
    const cuuint64_t* globalDim, const cuuint64_t* globalStrides, const cuuint32_t* boxDim,
    const cuuint32_t* elementStrides, CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
    CUtensorMapL2promotion l2Promotion, CUtensorMapFloatOOBfill oobFill);
