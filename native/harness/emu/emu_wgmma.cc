// emu_wgmma.cc: the emulator's model of Hopper's warpgroup MMA (emu.h has the model and its
// checks in brief), for the inline PTX of kernels/cuda/wgmma.cuh, which transform.py turns into
// these calls:
//   wgmma.fence.sync.aligned                                        wgmma_fence
//   wgmma.mma_async.sync.aligned.m64n128k{8,16}.f32.{tf32,bf16,f16}  wgmma_mma_async
//     d, a-desc, b-desc, scale-d, 1, 1 [, 0, 0]  (no negation; A and B K-major)
//   wgmma.commit_group.sync.aligned                                 wgmma_commit_group
//   wgmma.wait_group.sync.aligned N                                 wgmma_wait_group
//   fence.proxy.async.shared::cta                                   fence_proxy_async
// What it implements, from the PTX ISA (9.7.15, "Asynchronous Warpgroup Level Matrix Multiply-
// Accumulate Instructions"):
//   - a warpgroup is 4 consecutive warps (threads 128 i .. 128 i + 127); D (64 x N) = A (64 x K)
//     * B (K x N) (+ D when scale-d), A "row-major" and B "column-major": both with K contiguous
//     (K-major), i.e. B as N rows of K values, which is how the kernels store it;
//   - the matrix descriptor (9.7.15.5.1.2.2): bits 0-13 start address, 16-29 leading-dimension
//     byte offset (LBO), 32-45 stride-dimension byte offset (SBO), each (x & 0x3FFFF) >> 4;
//     49-51 base offset (for the swizzled modes only); 62-63 swizzle (0 none, 1 128 B, 2 64 B,
//     3 32 B). Only mode 0 is emulated;
//   - the shared-memory layout without swizzle, K-major (9.7.15.5.1.2, the swizzle atom of
//     "None, K": 8 x 1 elements of 128 bits): a core matrix of 8 rows x 16 bytes stored as 128
//     contiguous bytes (row r at byte 16 r). LBO is the distance between core matrices adjacent
//     in K, SBO between core matrices adjacent in M or N (8-row groups). So element (row, k) of
//     an operand, e bytes each, is at
//       start + (row / 8) * SBO + (k e / 16) * LBO + (row % 8) * 16 + (k e) % 16;
//   - the accumulator fragment (9.7.15.5.1.1, figure "register fragment layout for accumulator
//     matrix D"): warp w of the warpgroup holds rows 16 w .. 16 w + 15; with g = lane / 4,
//     t = lane % 4, d[4 j + 0], d[4 j + 1] are row 16 w + g, columns 8 j + 2 t, 8 j + 2 t + 1,
//     and d[4 j + 2], d[4 j + 3] the same columns of row 16 w + g + 8;
//   - ordering (9.7.15.7): wgmma.fence before the first mma_async and between a register
//     access and an mma_async using those registers; commit_group closes the mma_asyncs not yet
//     committed into a group; wait_group N waits until at most the N newest groups are
//     pending; touching an accumulator before the wait that covers its mma_async is undefined.
//     The tensor core reads shared memory through the async proxy: ordinary stores must be
//     followed by fence.proxy.async before it reads them (9.7.15.4).
// The emulator records each mma_async and computes it at the wait that completes it, from the
// shared memory of that moment, one warp's 16 rows at a time (on a GPU each warp's part runs on
// its own SM sub-partition, with no promise about when the others read), so a kernel that
// overwrites an operand before every warp has waited reads the new data. wgmma.fence and
// commit_group are not warp collectives here (they would cost a fiber switch each): what the
// lanes issued is compared at the wait, where the descriptors are decoded (once per warp).
// Groups complete in order, each op in issue order, so mma_asyncs of a later group may chain into
// the accumulators of a pending one (the ISA orders "accumulator register accesses across multiple
// wgmma.mma_async instructions of the same shape" by default: 9.7.15.7.1) and wait_group 1 keeps
// one group in flight. A thread's own writes to pending accumulators are still found: each op
// keeps the accumulators as they were at its issue or at the last wait, and every wait compares.
// fence.proxy.async: in blocks emu_proxy.cc tracks, each operand byte must be visible to the async
// proxy when the mma_async is issued and when it completes (no ordinary store since its writer's
// last fence.proxy.async); in the other blocks the coarse check remains that some thread executed
// one before the first mma_async (waived once the block used the TMA, whose writes need none).
// Operands a TMA copy wrote must have been waited for (emu_tma.cc).
#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "cuda_runtime.h"
#include "emu_internal.h"

namespace emu {
namespace {

constexpr int kRowsA = 64, kRowsB = 128;  // m64, n128

// One operand as its descriptor places it: the host address of each core matrix (8 rows x
// 16 bytes), [row group][core matrix along k: 0, 1] (every shape here reads 32 bytes of k).
struct Operand {
  const unsigned char* cm[kRowsB / 8][2];
};

// One wgmma.mma_async as one thread issued it.
struct Op {
  int kind, scale_d;  // kind: 1 tf32, 2 bf16, 3 f16 (MathMode values)
  uint64_t da, db;
  float* d;           // the thread's 64 accumulators
  float snap[64];     // d at the issue: the thread must not write it before the wait
};

struct Lane {
  std::vector<Op> ops;          // issued and not completed, oldest first
  std::vector<size_t> commits;  // ops.size() at each commit_group since then (groups' ends)
  bool fenced = false;          // a wgmma.fence since the last wait_group (or the start)
  bool at_wait = false;         // parked at a wait_group's warp barrier
  unsigned waits = 0;           // wait_groups executed in this block
};

// What the warps of a warpgroup must agree on for one group: each op's kind, scale-d, descriptors.
using GroupKey = std::vector<std::array<uint64_t, 4>>;
struct GroupSeen {
  GroupKey key;
  int warps = 0;
};

Lane g_lane[1024];
unsigned g_warp_waits[32];   // wait_groups each warp has completed
unsigned g_warp_groups[32];  // groups each warp has completed
std::map<unsigned, GroupSeen> g_history[8];  // per warpgroup: group index -> what its first warp did
int g_threads = 0;
unsigned long long g_proxy_fences = 0;  // fence.proxy.async executed in this block

// Decodes a descriptor of an operand with `rows` rows into its core matrices' host addresses.
void decode(uint64_t desc, int rows, const char* name, Operand& out) {
  constexpr uint64_t kFields = 0x3FFFull | 0x3FFFull << 16 | 0x3FFFull << 32 | 7ull << 49 | 3ull << 62;
  if (desc & ~kFields)
    faultf(-1, "wgmma descriptor of %s 0x%016llx has bits set outside its fields", name, (unsigned long long)desc);
  const int mode = (int)(desc >> 62), base = (int)((desc >> 49) & 7);
  if (mode != 0)
    faultf(-1, "wgmma descriptor of %s 0x%016llx: swizzle mode %d (%s); only mode 0, no swizzle, is emulated", name,
           (unsigned long long)desc, mode, mode == 1 ? "128-byte" : mode == 2 ? "64-byte" : "32-byte");
  if (base != 0)
    faultf(-1, "wgmma descriptor of %s 0x%016llx: base offset %d (meaningful only with a swizzle; not emulated)", name,
           (unsigned long long)desc, base);
  const uint64_t start = (desc & 0x3FFF) << 4, lbo = ((desc >> 16) & 0x3FFF) << 4, sbo = ((desc >> 32) & 0x3FFF) << 4;
  for (int rg = 0; rg < rows / 8; ++rg)
    for (int kc = 0; kc < 2; ++kc) {
      const uint64_t addr = start + rg * sbo + kc * lbo;
      const unsigned char* host = addr + 128 <= (1u << 18) ? shared_host((uint32_t)addr, 128) : nullptr;
      if (!host)
        faultf(-1,
               "wgmma operand %s: core matrix (rows %d..%d, k bytes %d..%d) at shared address 0x%llx lies outside "
               "every __shared__ array (descriptor 0x%016llx: start 0x%llx, LBO %llu, SBO %llu)",
               name, 8 * rg, 8 * rg + 7, 16 * kc, 16 * kc + 15, (unsigned long long)addr, (unsigned long long)desc,
               (unsigned long long)start, (unsigned long long)lbo, (unsigned long long)sbo);
      out.cm[rg][kc] = host;
    }
}

// Window address of core matrix (row group rg, k chunk kc) of a descriptor (the fields as in decode).
uint32_t cm_addr(uint64_t desc, int rg, int kc) {
  const uint64_t start = (desc & 0x3FFF) << 4, lbo = ((desc >> 16) & 0x3FFF) << 4, sbo = ((desc >> 32) & 0x3FFF) << 4;
  return (uint32_t)(start + rg * sbo + kc * lbo);
}

// The core matrices warp `warp` of the warpgroup reads for one op: its 16 rows of A (2 row groups)
// and all of B, each two 16-byte k chunks; A's 4 first.
constexpr int kOpCms = 4 + 2 * kRowsB / 8;
void op_cms(uint64_t da, uint64_t db, int warp, uint32_t (&out)[kOpCms]) {
  int n = 0;
  for (int rg = 2 * (warp % 4); rg < 2 * (warp % 4) + 2; ++rg)
    for (int kc = 0; kc < 2; ++kc) out[n++] = cm_addr(da, rg, kc);
  for (int rg = 0; rg < kRowsB / 8; ++rg)
    for (int kc = 0; kc < 2; ++kc) out[n++] = cm_addr(db, rg, kc);
}

// The async proxy's view of an op's operands (emu_proxy.cc, emu_tma.cc), when it is issued by
// thread lin (issue) or completed by a wait_group of `warp`.
void check_operands(uint64_t da, uint64_t db, int warp, int lin, bool issue) {
  uint32_t cms[kOpCms];
  op_cms(da, db, warp, cms);
  const char* what = issue ? "wgmma.mma_async" : "a wgmma.mma_async completing at this wait_group";
  for (int i = 0; i < kOpCms; ++i) {
    uint32_t at = 0;
    const int w = proxy_unfenced(cms[i], 128, &at);
    if (w >= 0)
      faultf(-1,
             "%s reads shared 0x%x (operand %s), last written by thread %d with an ordinary store not followed by its "
             "fence.proxy.async: the tensor core's async proxy may not see it (PTX ISA 9.7.15.7.1, 9.7.13.4)",
             what, at, i < 4 ? "A" : "B", w);
  }
  if (issue) tma_check_async_read(cms, kOpCms, 128, lin, what);
  else tma_check_pending_write(cms, kOpCms, 128, what);
}

// Element (row, k) of an operand, decoded as the tensor core reads it.
double element(const Operand& o, int row, int k, int kind) {
  const int bytes = kind == 1 ? 4 : 2, at = k * bytes;
  const unsigned char* p = o.cm[row / 8][at / 16] + (row % 8) * 16 + at % 16;
  if (kind == 1) {
    uint32_t u;
    std::memcpy(&u, p, 4);
    return dec_tf32(u);
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return kind == 2 ? dec_bf16(h) : dec_f16(h);
}

bool same_op(const Op& x, const Op& y) {
  return x.kind == y.kind && x.scale_d == y.scale_d && x.da == y.da && x.db == y.db;
}

// Op i of every lane of `warp` (the same operation: checked), computed into each lane's d.
void compute(int warp, size_t i) {
  const Op& op = g_lane[warp * 32].ops[i];
  const int K = op.kind == 1 ? 8 : 16, r0 = 16 * (warp % 4);
  check_operands(op.da, op.db, warp, -1, false);
  Operand oa, ob;  // the lanes agree on the descriptors (complete() checked): decoded once per warp
  decode(op.da, kRowsA, "A", oa);
  decode(op.db, kRowsB, "B", ob);
  double a[16][16], b[kRowsB][16];
  for (int r = 0; r < 16; ++r)
    for (int k = 0; k < K; ++k) a[r][k] = element(oa, r0 + r, k, op.kind);
  for (int n = 0; n < kRowsB; ++n)
    for (int k = 0; k < K; ++k) b[n][k] = element(ob, n, k, op.kind);
  for (int l = 0; l < 32; ++l) {
    float* d = g_lane[warp * 32 + l].ops[i].d;
    const int g = l >> 2, t = l & 3;
    for (int j = 0; j < 16; ++j)
      for (int e = 0; e < 4; ++e) {
        const int r = g + 8 * (e >> 1), c = 8 * j + 2 * t + (e & 1);
        double acc = 0.0;
        for (int k = 0; k < K; ++k) acc += a[r][k] * b[c][k];
        d[4 * j + e] = (float)(acc + (op.scale_d ? (double)d[4 * j + e] : 0.0));
      }
  }
}

// The 4 warps of a warpgroup must complete the same groups: the first to complete group gi
// records it, the others compare.
void agree(int warp, unsigned gi, GroupKey key) {
  auto& seen = g_history[warp / 4];
  auto it = seen.find(gi);
  if (it == seen.end()) {
    seen[gi] = GroupSeen{std::move(key), 1};
    return;
  }
  if (it->second.key != key)
    faultf(warp * 32,
           "the warps of warpgroup %d issued different wgmma groups: in group %u, warp %d issued %zu mma_async (or "
           "other types, descriptors or scale-d) where another issued %zu",
           warp / 4, gi, warp, key.size(), it->second.key.size());
  if (++it->second.warps == 4) seen.erase(it);
}

// The first lane of `warp` back from a wait_group's barrier: checks what the lanes issued, then
// completes all but the n newest committed groups for the whole warp.
void complete(int warp, int n) {
  const int l0 = warp * 32;
  const Lane& ref = g_lane[l0];
  for (int l = l0; l < l0 + 32; ++l) {
    const Lane& L = g_lane[l];
    if (!L.at_wait || L.waits != ref.waits)
      faultf(l, "wgmma.wait_group not executed by every lane of the warp together (this lane is elsewhere)");
    bool same = L.ops.size() == ref.ops.size() && L.commits == ref.commits;
    for (size_t i = 0; same && i < L.ops.size(); ++i) same = same_op(L.ops[i], ref.ops[i]);
    if (!same)
      faultf(l, "the lanes of a warp issued different wgmma.mma_async operations (type, descriptors, scale-d) or "
                "groups since their last wait_group (this lane differs from lane 0)");
    for (const Op& op : L.ops)
      if (std::memcmp(op.d, op.snap, sizeof op.snap) != 0)
        faultf(l, "accumulator registers written while a wgmma.mma_async on them was pending (before the "
                  "wgmma.wait_group that completes it)");
  }
  const size_t groups = ref.commits.size(), done_groups = groups > (size_t)n ? groups - n : 0;
  if (done_groups == 0) return;
  const size_t done_ops = ref.commits[done_groups - 1];
  for (size_t gi = 0, begin = 0; gi < done_groups; begin = ref.commits[gi++]) {
    GroupKey key;
    for (size_t i = begin; i < ref.commits[gi]; ++i) {
      const Op& op = ref.ops[i];
      key.push_back({(uint64_t)op.kind, (uint64_t)op.scale_d, op.da, op.db});
    }
    agree(warp, g_warp_groups[warp]++, std::move(key));
  }
  for (size_t i = 0; i < done_ops; ++i) compute(warp, i);
  for (int l = l0; l < l0 + 32; ++l) {
    Lane& L = g_lane[l];
    L.ops.erase(L.ops.begin(), L.ops.begin() + done_ops);
    L.commits.erase(L.commits.begin(), L.commits.begin() + done_groups);
    for (size_t& c : L.commits) c -= done_ops;
    for (Op& op : L.ops) std::memcpy(op.snap, op.d, sizeof op.snap);  // this wait wrote some of them
  }
}

}  // namespace

void wgmma_fence() { g_lane[lane_linear()].fenced = true; }

void fence_proxy_async() {
  const int lin = lane_linear();
  ++g_proxy_fences;
  proxy_activate();
  proxy_fence(lin);
  tma_fence(lin);
}

void wgmma_mma_async(int kind, float (&d)[64], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  const int lin = lane_linear();
  Lane& L = g_lane[lin];
  if ((lin / 128 + 1) * 128 > g_threads)
    faultf(-1, "wgmma.mma_async in a partial warpgroup (the block has %d threads, not a multiple of 128)", g_threads);
  if (!L.fenced)
    faultf(-1, "wgmma.mma_async without a wgmma.fence since the thread's last wgmma.wait_group (or its start)");
  if (g_proxy_fences == 0 && !proxy_precise() && !tma_block_used())
    faultf(-1, "wgmma.mma_async before any thread of the block executed fence.proxy.async (shared-memory stores "
               "are not visible to the tensor core's async proxy without it)");
  proxy_activate();
  proxy_attribute(lin);
  check_operands(desc_a, desc_b, lin / 32, lin, true);
  Op op;
  op.kind = kind;
  op.scale_d = scale_d != 0;
  op.da = desc_a;
  op.db = desc_b;
  op.d = d;
  std::memcpy(op.snap, d, sizeof op.snap);
  L.ops.push_back(op);
}

void wgmma_commit_group() {
  Lane& L = g_lane[lane_linear()];
  L.commits.push_back(L.ops.size());
}

void wgmma_wait_group(int n) {
  const int lin = lane_linear(), warp = lin / 32;
  if ((warp + 1) * 32 > g_threads)
    faultf(-1, "wgmma.wait_group in a partial warp (the block has %d threads, not a multiple of 32)", g_threads);
  Lane& L = g_lane[lin];
  ++L.waits;
  L.at_wait = true;
  warp_barrier();  // every lane of the warp has issued what this wait covers
  if (g_warp_waits[warp] < L.waits) {  // the first lane of the warp back: does the warp's work
    complete(warp, n);
    g_warp_waits[warp] = L.waits;
  }
  L.at_wait = false;
  L.fenced = false;  // the thread will touch its accumulators: the next mma_async needs a fence
}

void wgmma_block_begin(int threads) {
  g_threads = threads;
  for (int i = 0; i < threads; ++i) {
    Lane& L = g_lane[i];
    L.ops.clear();
    L.commits.clear();
    L.fenced = L.at_wait = false;
    L.waits = 0;
  }
  std::memset(g_warp_waits, 0, sizeof g_warp_waits);
  std::memset(g_warp_groups, 0, sizeof g_warp_groups);
  for (auto& h : g_history) h.clear();
  g_proxy_fences = 0;
}

void wgmma_thread_exit() {
  const Lane& L = g_lane[lane_linear()];
  if (L.ops.empty()) return;
  const bool committed = !L.commits.empty() && L.commits.back() == L.ops.size();
  faultf(-1, committed ? "thread exits with wgmma.mma_async groups committed but not waited for (wgmma.wait_group)"
                       : "thread exits with wgmma.mma_async not committed (wgmma.commit_group) nor waited for");
}

int wgmma_pending_reader(uint32_t lo, uint32_t hi) {
  for (int warp = 0; warp < g_threads / 32; ++warp)
    for (const Op& op : g_lane[warp * 32].ops) {
      uint32_t cms[kOpCms];
      op_cms(op.da, op.db, warp, cms);
      for (uint32_t a : cms)
        if (a < hi && lo < a + 128) return warp * 32;
    }
  return -1;
}

void wgmma_block_end() {
  for (int wg = 0; wg < 8; ++wg) {
    if (g_history[wg].empty()) continue;
    const auto& first = *g_history[wg].begin();
    faultf(wg * 128, "wgmma group %u of warpgroup %d was completed by only %d of its 4 warps", first.first, wg,
           first.second.warps);
  }
}

}  // namespace emu
