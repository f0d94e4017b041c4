// emu_selftest_tma_faults.cc: part of the TMA model's self-test (emu_selftest_tma.cc): every check
// of the mbarrier/copy model and of the async proxy, each in a kernel with one bug that must stop
// with the emulator's message naming it, beside controls that must run through.
// The kernel: 128 threads (one warpgroup), 8448 bytes of dynamic shared memory: A at 0 and B at
// 4096 (two boxes {4 floats, 128 rows} each: k chunks 2048 bytes apart), mbarriers X at 8192 and
// Y at 8200.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "emu_selftest_tma.h"
#include "wgmma.cuh"

namespace {

using namespace emu_test;
using imagerate::cuda::MathMode;

enum Bug {
  kNone, kChainOk, kDstMisaligned, kUninitBar, kInitLive, kTxOver, kTxUnder, kExtraArrive, kArriveUnwaited, kParity2,
  kDeadlock, kDeadlockTx, kInFlightAtExit, kNoFenceInit, kBadMap, kHostMap, kGlobalMap, kRank3Map, kBoxOutside,
  kGlobalOutside, kCopyOverPending, kWgmmaInFlight, kUnobserved, kFenceBeforeStore, kOneNoFence, kCopyOverUnfenced,
  kStoreDuringCopy, kStoreBarBytes, kInitUnpublished, kNoProxyFence,
};
constexpr size_t kSmem = 8448;
constexpr uint32_t kOpBytes = 4096;

// Thread 0's copies of A and B on `bar`, announcing extra bytes more than they bring.
void stage(uint32_t base, uint32_t bar, const tma::Map* ma, const tma::Map* mb, uint32_t extra = 0) {
  tma::mbar_expect_tx(bar, 2 * kOpBytes + extra);
  for (int j = 0; j < 2; ++j) {
    tma::load_2d(base + 2048 * j, ma, 4 * j, 0, bar);
    tma::load_2d(base + kOpBytes + 2048 * j, mb, 4 * j, 0, bar);
  }
}

void mma(float (&d)[64], uint32_t base) {
  wg::fence();
  wg::mma_m64n128<MathMode::TF32>(d, wg::desc(base, 2048, 128), wg::desc(base + kOpBytes, 2048, 128), 0);
  wg::commit();
}

// Ordinary stores of this thread's 64 bytes of A and B (0.5f).
void store_share(unsigned char* smem) {
  float* f = reinterpret_cast<float*>(smem);
  for (int i = 0; i < 16; ++i) f[(int)threadIdx.x * 16 + i] = 0.5f;
}

__global__ void bad_kernel(int bug, const __grid_constant__ tma::Map ma, const __grid_constant__ tma::Map mb,
                           const tma::Map* other) {
  unsigned char* smem = static_cast<unsigned char*>(emu::shared_dynamic(128));
  const int tid = (int)threadIdx.x;
  const uint32_t base = wg::smem_addr(smem), x = base + 8192, y = base + 8200;
  float d[64] = {};
  if (bug == kFenceBeforeStore || bug == kOneNoFence || bug == kNoProxyFence) {  // operands by ordinary stores
    if (bug == kFenceBeforeStore) wg::fence_proxy_async();
    store_share(smem);
    if (bug == kOneNoFence && tid != 5) wg::fence_proxy_async();
    __syncthreads();
    mma(d, base);
    wg::wait_all();
    return;
  }
  if (tid == 0) {
    tma::mbar_init(x, 1);
    if (bug != kInitUnpublished) tma::mbar_init(y, bug == kChainOk || bug == kUnobserved ? 1 : 128);
    if (bug != kNoFenceInit) tma::fence_mbar_init();
  }
  if (bug == kInitUnpublished) {
    tma::mbar_expect_tx(x, 0);  // every thread arrives, the others before any __syncthreads
    return;
  }
  __syncthreads();
  switch (bug) {
    case kDstMisaligned: if (tid == 0) tma::load_2d(base + 16, &ma, 0, 0, x); break;
    case kUninitBar: if (tid == 0) tma::mbar_expect_tx(y + 8, 0); break;
    case kInitLive: if (tid == 0) stage(base, x, &ma, &mb), tma::mbar_init(x, 1); break;
    case kTxOver: if (tid == 0) tma::mbar_expect_tx(x, 1u << 20); break;
    case kTxUnder:  // boxes land one after another, none announced
      for (int i = 0; tid == 0 && i < 600; ++i) tma::load_2d(base, &ma, 0, 0, x), (void)tma::mbar_try_wait(x, 0);
      break;
    case kExtraArrive: if (tid == 0) tma::mbar_expect_tx(x, 16), tma::mbar_expect_tx(x, 0); break;
    case kArriveUnwaited: if (tid == 0) tma::mbar_expect_tx(x, 0), tma::mbar_expect_tx(x, 0); break;
    case kParity2: (void)tma::mbar_try_wait(x, 2); break;
    case kDeadlock: tma::mbar_wait(x, 0); break;
    case kDeadlockTx: if (tid == 0) stage(base, x, &ma, &mb, 16); tma::mbar_wait(x, 0); break;
    case kInFlightAtExit: if (tid == 0) stage(base, x, &ma, &mb); break;
    case kNoFenceInit: if (tid == 0) stage(base, x, &ma, &mb); tma::mbar_wait(x, 0); break;
    case kBadMap: if (tid == 0) stage(base, x, &ma, &mb); break;
    case kHostMap: case kGlobalMap: if (tid == 0) tma::load_2d(base, other, 0, 0, x); break;
    case kRank3Map: if (tid == 0) tma::load_2d(base, &ma, 0, 0, x); break;
    case kBoxOutside: if (tid == 0) tma::load_2d(base + 7168, &ma, 0, 0, x); break;
    case kGlobalOutside: if (tid == 0) tma::load_2d(base, &ma, 0, 512, x); break;
    case kCopyOverPending:
      if (tid == 0) stage(base, x, &ma, &mb);
      tma::mbar_wait(x, 0);
      mma(d, base);
      __syncthreads();  // every warp has issued
      if (tid == 0) tma::mbar_expect_tx(y, 2048), tma::load_2d(base, &ma, 0, 0, y);
      break;
    case kWgmmaInFlight:
      if (tid == 0) stage(base, x, &ma, &mb);
      __syncthreads();
      mma(d, base);
      break;
    case kChainOk: case kUnobserved:
      // Thread 0 waits for the copies, then arrives on Y; the others see them through Y (acquire),
      // except, with kUnobserved, lanes 1..31 of warp 0, ordered after thread 0 only by a shuffle.
      if (tid == 0) stage(base, x, &ma, &mb), tma::mbar_wait(x, 0), tma::mbar_expect_tx(y, 0);
      if (tid >= 32 || (tid > 0 && bug == kChainOk)) tma::mbar_wait(y, 0);
      if (tid < 32) (void)__shfl_down_sync(0xffffffffu, tid, 1);
      mma(d, base);
      break;
    case kCopyOverUnfenced:
      if (tid == 0) reinterpret_cast<float*>(smem)[3] = 1.f, stage(base, x, &ma, &mb);
      tma::mbar_wait(x, 0);
      break;
    case kStoreDuringCopy:
      if (tid == 0) stage(base, x, &ma, &mb), reinterpret_cast<float*>(smem)[3] = 1.f;
      tma::mbar_wait(x, 0);
      break;
    case kStoreBarBytes:
      if (tid == 1) smem[8192 + 3] = 0;
      __syncthreads();
      if (tid == 0) stage(base, x, &ma, &mb);
      tma::mbar_wait(x, 0);
      break;
    default:  // the control: copies, wait, wgmma
      if (tid == 0) stage(base, x, &ma, &mb);
      tma::mbar_wait(x, 0);
      mma(d, base);
  }
  wg::wait_all();
}

struct Maps {
  tma::Map a, b, rank3, outside, zero;
  tma::Map* host;
  tma::Map* global;
};

Maps make_maps() {
  static std::vector<float> ha(128 * 8), hb(128 * 8);
  for (int i = 0; i < 128 * 8; ++i) ha[i] = (float)(i % 7) * 0.25f, hb[i] = (float)(i % 5) * 0.5f;
  static float* a = device_floats(ha);
  static float* b = device_floats(hb);
  Maps m{};
  encode_2d(&m.a, a, 8, 128, 32, 4, 128);
  encode_2d(&m.b, b, 8, 128, 32, 4, 128);
  encode_2d(&m.outside, a, 8, 1024, 32, 4, 128);  // claims 1024 rows of a 128-row allocation
  const cuuint64_t dims[3] = {8, 16, 8}, strides[2] = {32, 512};
  const cuuint32_t box[3] = {4, 16, 1}, es[3] = {1, 1, 1};
  encoder()(reinterpret_cast<CUtensorMap*>(&m.rank3), CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 3, a, dims, strides, box, es,
            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  static tma::Map host_copy;
  host_copy = m.a;
  m.host = &host_copy;
  void* g = nullptr;
  cudaMalloc(&g, sizeof(tma::Map));
  cudaMemcpy(g, &m.a, sizeof(tma::Map), cudaMemcpyHostToDevice);
  m.global = (tma::Map*)g;
  return m;
}

void run_bad(int bug, unsigned blocks = 1) {
  const Maps m = make_maps();
  const tma::Map& a = bug == kBadMap ? m.zero : bug == kRank3Map ? m.rank3 : bug == kGlobalOutside ? m.outside : m.a;
  const tma::Map* other = bug == kGlobalMap ? m.global : m.host;
  emu::launch("tma_selftest_bad", dim3(blocks), dim3(128), kSmem, nullptr, &bad_kernel, bug, a, m.b, other);
}

}  // namespace

void emu_test::check_tma_faults(Tally& t) {
  expect_pass(t, "control: the fault kernel without a bug (copies, wait, wgmma) runs through", [] {
    run_bad(kNone, 2);
    return std::string();
  });
  expect_pass(t, "control: copies seen through an mbarrier chain (wait X, arrive Y; others wait Y) are visible", [] {
    run_bad(kChainOk);
    return std::string();
  });
  struct Case {
    const char* name;
    int bug;
    std::initializer_list<const char*> want;
    unsigned blocks;
  };
  const Case cases[] = {
      {"copy destination not 128-byte aligned", kDstMisaligned, {"not 128-byte aligned"}, 1},
      {"arrive on an uninitialised mbarrier", kUninitBar, {"holds no initialised mbarrier"}, 1},
      {"init of an mbarrier with copies in flight", kInitLive, {"holds a live mbarrier (4 copies in flight"}, 1},
      {"expect_tx past 2^20 - 1", kTxOver, {"over 2^20 - 1"}, 1},
      {"copies landing 2^20 bytes beyond expect_tx", kTxUnder, {"below -(2^20 - 1)"}, 1},
      {"more arrivals than the expected count", kExtraArrive, {"more arrive-on operations"}, 1},
      {"an arrive before the previous phase was waited for", kArriveUnwaited, {"before any mbarrier.try_wait returned true"}, 1},
      {"try_wait parity 2", kParity2, {"only 0 and 1"}, 1},
      {"deadlock: every thread waits on a phase nobody arrives on", kDeadlock, {"deadlock"}, 1},
      {"deadlock: expect_tx 16 bytes more than the copies bring", kDeadlockTx, {"deadlock", "tx-count 16"}, 1},
      {"the block ends with copies in flight", kInFlightAtExit, {"still in flight: this thread's copy"}, 1},
      {"no fence.mbarrier_init after the init", kNoFenceInit, {"did not follow with fence.mbarrier_init"}, 1},
      {"a tensor map not made by the encoder", kBadMap, {"holds no map made by cuTensorMapEncodeTiled"}, 1},
      {"a tensor map in host memory", kHostMap, {"neither a kernel parameter"}, 1},
      {"a tensor map in global memory (not modelled)", kGlobalMap, {"in global memory"}, 1},
      {"a rank-3 map with the .2d copy", kRank3Map, {".2d with a tensor map of rank 3"}, 1},
      {"a box past the end of the dynamic shared memory", kBoxOutside, {"does not lie within one"}, 1},
      {"a box whose in-bounds elements leave the allocation", kGlobalOutside, {"outside every device allocation"}, 1},
      {"a copy into operands a pending wgmma reads", kCopyOverPending, {"which a wgmma.mma_async of warp"}, 1},
      {"wgmma reading operands a copy in flight writes", kWgmmaInFlight, {"still in flight"}, 1},
      {"wgmma reading landed copies its thread has not observed", kUnobserved, {"has not observed"}, 1},
      {"fence.proxy.async before the ordinary stores, not after", kFenceBeforeStore, {"not followed by its fence.proxy.async"}, 1},
      {"one thread (5) of the writers without fence.proxy.async", kOneNoFence, {"thread 5 with an ordinary store"}, 2},
      {"no fence.proxy.async in the block at all", kNoProxyFence, {"fence.proxy.async"}, 1},
      {"a copy over an unfenced ordinary store", kCopyOverUnfenced, {"last written by thread 0 with an ordinary store"}, 1},
      {"an ordinary store into a box while its copy is in flight", kStoreDuringCopy, {"while a cp.async.bulk.tensor"}, 1},
      {"ordinary stores over the mbarrier object", kStoreBarBytes, {"overwritten by ordinary stores"}, 1},
      {"an mbarrier used before its init was published", kInitUnpublished,
       {"is not yet visible to this thread", "holds no initialised mbarrier"}, 1},
  };
  for (const Case& c : cases)
    expect_fault(t, std::string("fault: ") + c.name, "tma_selftest_bad", c.want, [&] { run_bad(c.bug, c.blocks); });
}
