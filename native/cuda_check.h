// cuda_check.h: every CUDA runtime call of the CUDA addon's glue goes through CUDA_CHECK (STYLE
// rule 9). A failure becomes a JS Error whose message names the backend, the export and the
// CUDA error, plus what was being done, e.g.
//   "cuda conv2dFwd: cudaErrorMemoryAllocation (out of memory) allocating 12884901888 bytes"
// and whose `code` property is the CUDA error name ("cudaErrorMemoryAllocation"), so callers
// can tell out-of-memory (recoverable: the runtime's last-error slot is cleared here) from a
// sticky fault such as cudaErrorIllegalAddress (the context is lost until the process ends).
//
// On the JS thread the error is thrown as a Napi::Error at once. Off the JS thread (the
// completion thread of cuda_stream.cc) cuda_error_text() gives the same text, carried to JS as
// a Promise rejection.
//
// Host compiler only: <cuda_runtime_api.h> is plain C++, nvcc never sees this file.
#pragma once
#include <cuda_runtime_api.h>
#include <napi.h>

#include <string>

namespace imagerate {

// "cudaErrorMemoryAllocation (out of memory)"
inline std::string cuda_error_text(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")";
}

// "cuda <op>: <error text>[ <detail>]"
inline std::string cuda_failure(const char* op, cudaError_t e, const std::string& detail = std::string()) {
  std::string s = std::string("cuda ") + op + ": " + cuda_error_text(e);
  if (!detail.empty()) s += " " + detail;
  return s;
}

// Throws the JS Error described above. Clears the runtime's last-error slot first, so a
// recoverable error (out of memory, an invalid launch configuration) does not resurface from
// an unrelated later call.
[[noreturn]] inline void throw_cuda(Napi::Env env, const char* op, cudaError_t e, const std::string& detail = std::string()) {
  (void)cudaGetLastError();
  Napi::Error err = Napi::Error::New(env, cuda_failure(op, e, detail));
  err.Set("code", Napi::String::New(env, cudaGetErrorName(e)));
  throw err;
}

}  // namespace imagerate

// CUDA_CHECK(env, "conv2dFwd", cudaMemsetAsync(...)) or with a detail string as 4th argument.
#define CUDA_CHECK(env, op, call, ...)                                     \
  do {                                                                     \
    const cudaError_t imagerate_cuda_err_ = (call);                        \
    if (imagerate_cuda_err_ != cudaSuccess)                                \
      ::imagerate::throw_cuda((env), (op), imagerate_cuda_err_, ##__VA_ARGS__); \
  } while (0)
