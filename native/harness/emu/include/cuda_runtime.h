// cuda_runtime.h (emulator stub): the runtime API plus the device-side language pieces (see emu.h).
#pragma once
#include "cuda_runtime_api.h"
#include "emu.h"

// The runtime's C++ overload: the kernel itself rather than a const void*.
template <class T>
inline cudaError_t cudaFuncSetAttribute(T* entry, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(entry), attr, value);
}
