// cuda_addon.cc: Node-API glue of imagerate_cuda.node (built only when nvcc exists). For now it
// exports probe() only; the CUDA kernels and their stream arrive in a later issue.
//
//   probe() -> { available: boolean, reason?: string, driverVersion: number, runtimeVersion: number,
//                devices?: [{ index, name, computeCapability: "9.0", totalMemoryBytes, multiprocessors,
//                             l2CacheBytes, sharedMemPerBlockOptin, pciBusId: "0000:01:00.0" }] }
//
// Versions use CUDA's encoding (13000 = 13.0); driverVersion 0 means no driver is installed.
// Loading this addon never fails for lack of a GPU: the CUDA runtime is static and finds the
// driver at run time, so a machine without one gets available:false and a printable reason.
// The glue calls only plain C++ functions from kernels/cuda (nvcc never sees napi.h).
#include <napi.h>

#include <cstdio>
#include <string>

#include "device_probe.h"

namespace {

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  constexpr int kMaxDevices = 16;
  ImagerateCudaDevice devs[kMaxDevices];
  char reason[512] = {0};
  int drv = 0, rt = 0;
  const int count = imagerate_cuda_probe(reason, sizeof reason, &drv, &rt, devs, kMaxDevices);

  Napi::Object o = Napi::Object::New(env);
  o.Set("available", count > 0);
  o.Set("driverVersion", drv);
  o.Set("runtimeVersion", rt);
  if (count <= 0) {
    o.Set("reason", std::string(reason[0] ? reason : "unknown CUDA error"));
    return o;
  }
  Napi::Array list = Napi::Array::New(env);
  for (int i = 0; i < count && i < kMaxDevices; ++i) {
    const ImagerateCudaDevice& d = devs[i];
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("index", i);
    dev.Set("name", std::string(d.name));
    dev.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    dev.Set("totalMemoryBytes", (double)d.total_mem);
    dev.Set("multiprocessors", d.multiprocessors);
    dev.Set("l2CacheBytes", d.l2_cache_bytes);
    dev.Set("sharedMemPerBlockOptin", d.shared_mem_per_block_optin);
    char pci[32];
    std::snprintf(pci, sizeof pci, "%04x:%02x:%02x.0", d.pci_domain, d.pci_bus, d.pci_device);
    dev.Set("pciBusId", std::string(pci));
    list.Set((uint32_t)i, dev);
  }
  o.Set("devices", list);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  return exports;
}

}  // namespace

// Stateless, hence safe to load in several environments (worker_threads) at once.
NODE_API_MODULE(imagerate_cuda, Init)
