// device_probe.h: what the CUDA addon's probe() asks of the CUDA runtime. Plain C++ (no CUDA or
// Node-API headers), so native/cuda_addon.cc compiles with the host compiler and nvcc never
// sees napi.h. Implemented in device_probe.cu.
#pragma once

struct ImagerateCudaDevice {
  char name[256];
  int major, minor;                   // compute capability
  unsigned long long total_mem;       // bytes
  int multiprocessors;
  int l2_cache_bytes;
  int shared_mem_per_block_optin;     // bytes
  int pci_domain, pci_bus, pci_device;
};

// Probes the CUDA driver and devices. Always writes *driver_version and *runtime_version
// (CUDA's encoding, 1000*major + 10*minor; driver 0 means no driver is installed).
// Returns the number of CUDA devices (> 0) and fills up to max_devices entries of `devices`;
// or returns 0 when CUDA cannot be used, with a one-line reason in `reason` (NUL-terminated,
// at most reason_len bytes), e.g. "no NVIDIA driver" or "cudaErrorNoDevice: no CUDA-capable
// device is detected". Never aborts, never throws.
int imagerate_cuda_probe(char* reason, int reason_len, int* driver_version, int* runtime_version,
                         ImagerateCudaDevice* devices, int max_devices);
