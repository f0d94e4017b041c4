// device_probe.cu: CUDA availability and device properties for the CUDA addon (see
// device_probe.h). No kernels: host-side runtime API calls only.
//
// How "unavailable" is told apart:
//   cudaDriverGetVersion gives 0                 -> "no NVIDIA driver"
//   cudaErrorInsufficientDriver (35), driver 0   -> "no NVIDIA driver"
//   cudaErrorInsufficientDriver, driver > 0      -> the driver is older than this runtime
//   any other error                              -> "<cudaGetErrorName>: <cudaGetErrorString>"
// The runtime is linked statically (CMakeLists.txt), so loading the addon needs no libcudart
// and no libcuda; the runtime dlopens libcuda itself and reports its absence as above.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdint>
#include <cstring>

#include "device_probe.h"
#include "kernels.cuh"

namespace {

void set_reason(char* reason, int len, const char* text) {
  if (reason && len > 0) std::snprintf(reason, (size_t)len, "%s", text);
}

void version_str(int v, char* out, size_t n) { std::snprintf(out, n, "%d.%d", v / 1000, (v % 1000) / 10); }

}  // namespace

int imagerate_cuda_probe(char* reason, int reason_len, int* driver_version, int* runtime_version,
                         ImagerateCudaDevice* devices, int max_devices) {
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);  // leaves 0 when no driver is installed
  cudaRuntimeGetVersion(&rt);
  if (driver_version) *driver_version = drv;
  if (runtime_version) *runtime_version = rt;
  if (reason && reason_len > 0) reason[0] = '\0';

  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (drv == 0) {
    set_reason(reason, reason_len, "no NVIDIA driver");
    return 0;
  }
  if (err == cudaErrorInsufficientDriver) {
    char d[16], r[16];
    version_str(drv, d, sizeof d);
    version_str(rt, r, sizeof r);
    char msg[160];
    std::snprintf(msg, sizeof msg, "NVIDIA driver supports CUDA %s, older than this build's runtime %s", d, r);
    set_reason(reason, reason_len, msg);
    return 0;
  }
  if (err != cudaSuccess) {
    char msg[256];
    std::snprintf(msg, sizeof msg, "%s: %s", cudaGetErrorName(err), cudaGetErrorString(err));
    set_reason(reason, reason_len, msg);
    return 0;
  }
  if (count == 0) {
    set_reason(reason, reason_len, "driver found but no CUDA device");
    return 0;
  }
  for (int i = 0; i < count && i < max_devices && devices; ++i) {
    ImagerateCudaDevice& d = devices[i];
    std::memset(&d, 0, sizeof d);
    cudaDeviceProp p;
    const cudaError_t e = cudaGetDeviceProperties(&p, i);
    if (e != cudaSuccess) {
      std::snprintf(d.name, sizeof d.name, "(cudaGetDeviceProperties failed: %s)", cudaGetErrorName(e));
      continue;
    }
    std::snprintf(d.name, sizeof d.name, "%s", p.name);
    d.major = p.major;
    d.minor = p.minor;
    d.total_mem = (unsigned long long)p.totalGlobalMem;
    d.multiprocessors = p.multiProcessorCount;
    d.l2_cache_bytes = p.l2CacheSize;
    d.shared_mem_per_block_optin = (int)p.sharedMemPerBlockOptin;
    d.pci_domain = p.pciDomainID;
    d.pci_bus = p.pciBusID;
    d.pci_device = p.pciDeviceID;
  }
  return count;
}

namespace imagerate {
namespace cuda {

cudaError_t keep_scratch_pool(int device) {
  cudaMemPool_t pool;
  cudaError_t e = cudaDeviceGetDefaultMemPool(&pool, device);
  if (e != cudaSuccess) return e;
  uint64_t keep = UINT64_MAX;
  return cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
}

}  // namespace cuda
}  // namespace imagerate
