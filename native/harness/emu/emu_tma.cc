// emu_tma.cc: the emulator's model of the mbarrier object and of the TMA copy engine's
// cp.async.bulk.tensor, for the inline PTX of kernels/cuda/tma.cuh, which transform.py turns into
// these calls:
//   mbarrier.init.shared::cta.b64 [bar], count                     mbarrier_init
//   fence.mbarrier_init.release.cluster                            fence_mbarrier_init
//   mbarrier.arrive.expect_tx.shared::cta.b64 _, [bar], bytes      mbarrier_arrive_expect_tx
//   mbarrier.try_wait.parity.shared::cta.b64 p, [bar], parity      mbarrier_try_wait_parity
//   cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes
//       [dst], [map, {c0, c1}], [bar]                              tma_load_2d
// What it implements, from the PTX ISA (9.1):
//   - the mbarrier (9.7.13.15): an 8-byte-aligned object in shared memory (.1) holding the current
//     phase, the pending and expected arrival counts and the tx-count (.2: expected 1..2^20-1,
//     pending 0..2^20-1, tx-count -(2^20-1)..2^20-1); init sets phase 0, both counts to count and
//     tx-count 0, and on a live mbarrier is undefined (.9); an arrive-on decrements the pending
//     count (.7); expect-tx adds to the tx-count, complete-tx subtracts (.5.1, .5.2); arrive.expect_tx
//     is an expect-tx then an arrive-on of count 1 (.13); a phase completes when the pending count
//     and the tx-count are both zero, and then the next phase starts with the pending count reset
//     to the expected one (.6); each phase must be waited for (a test_wait/try_wait returning true)
//     before any arrive-on of the next (.4);
//   - try_wait.parity (.16): true iff the phase of that parity has completed, which is valid only
//     for the current incomplete phase (false) and the immediately preceding one (true): so the
//     answer is "parity != current phase's parity"; a wait on a phase two or more back has the
//     current phase's parity and answers false (the model cannot tell that the kernel meant an
//     old phase: it waits, or deadlocks). A thread whose try_wait is false yields, so the other
//     threads run; a block where no thread can progress faults (a deadlock report);
//   - cp.async.bulk.tensor (9.7.9.25.5.2) in tile mode, global to shared: the box of the tensor
//     map at the coordinates (signed, innermost first) is written to dst row after row, dimension 0
//     contiguous (5.5: shared memory is linear; 5.5.3.1 the bounding box), elements outside the
//     tensor as zeros (5.5.3.3, zero fill; negative coordinates allowed); on completion a
//     complete-tx of "the amount of data copied in bytes" on the mbarrier, which the model takes
//     as the whole box, zero fill included (the fill is written to shared memory too);
//   - requirements of the CUDA C++ Programming Guide's TMA alignment table: dst 128-byte aligned,
//     the mbarrier 8-byte aligned; the tensor map in .param (a const __grid_constant__ kernel
//     parameter), as the ISA allows .param/.const/.global and the emulator models the first.
// When a copy completes is up to the copy engine: the model performs it when the data is first
// needed, at the first try_wait that looks at its mbarrier (or faults at the block's end, when no
// thread ever waited). So a thread that reads the box before waiting sees what was there at the
// issue: the model fills the box with NaN bytes when the copy is issued.
// Who may see what (for the init and for the copies' bytes): an arrive-on has release and a true
// try_wait acquire semantics by default (9.7.13.15.13, .16), and __syncthreads orders the whole
// block. The model keeps, per thread, the phases of each mbarrier it knows complete (an init
// counts as "phase 0 known"): a true try_wait teaches the waiter its phase and everything the
// phase's arrivers knew when they arrived; a __syncthreads teaches every thread what any knew.
// Checks (each a fault naming the kernel, block, thread and address):
//   mbarrier: address not 8-aligned or in no shared array; count out of range; init of a live
//   mbarrier (copies in flight named); an operation on an address holding no initialised mbarrier,
//   or on one whose 8 bytes ordinary stores overwrote, or by a thread other than the initialising
//   one before a __syncthreads published the init; tx-count over or under its range; more
//   arrivals than expected in a phase; an arrive-on before the previous phase was waited for;
//   parity other than 0/1; the block ending with a copy in flight or a tx-count not zero.
//   copy: map operand not 64-aligned, not a kernel parameter (global maps need a tensormap proxy
//   fence: not modelled) or not made by the emulator's cuTensorMapEncodeTiled; map rank other than
//   the instruction's; dst not 128-aligned or the box not within one shared array; the box's
//   in-bounds elements outside every device allocation; the mbarrier's init not followed by
//   fence.mbarrier_init or fence.proxy.async of its thread (the Programming Guide's TMA example
//   makes the initialised barrier visible to the async proxy; stricter than the ISA's text);
//   a copy into bytes another copy in flight will write, or that an mma_async issued and not yet
//   completed will read, or that an unfenced ordinary store wrote (emu_proxy.cc); an ordinary
//   store into the box while the copy is in flight (tracked blocks).
//   wgmma (emu_wgmma.cc calls): an mma_async reading bytes a copy in flight will write, or bytes
//   of a landed copy whose completion the issuing thread has not observed (its own true
//   try_wait on that phase, or a __syncthreads after another thread's); a wgmma completing while
//   a copy in flight will still write its operands.
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "cuda_runtime.h"
#include "emu_internal.h"

namespace emu {
namespace {

constexpr int64_t kCountMax = (1 << 20) - 1;           // 9.7.13.15.2
constexpr uint64_t kMbarMagic = 0x5241424D554D45ull;   // "EMUMBAR": the object's bytes, checked
// Knowledge: per mbarrier (by its index in the block), how many of its phases are known complete
// (-1: not even its init is known). A thread's is the element-wise max of its own and the block's.
using Know = std::vector<int64_t>;
void join(Know& into, const Know& from) {
  if (into.size() < from.size()) into.resize(from.size(), -1);
  for (size_t i = 0; i < from.size(); ++i) into[i] = std::max(into[i], from[i]);
}

struct Mbar {
  bool live = false;
  size_t idx = 0;  // its index in the knowledge vectors
  uint32_t expected = 0, pending = 0;
  int64_t tx = 0;
  uint64_t phase = 0;     // the current phase = the number of completed ones
  bool prev_seen = true;  // a try_wait returned true for phase - 1 (at phase 0: nothing to wait for)
  int init_thread = -1;
  bool init_fenced = false;
  int in_flight = 0;            // copies issued on it that have not landed
  Know carried;                 // what this phase's arrivers knew (release)
  std::vector<Know> completed;  // per completed phase: what a waiter learns (acquire)
};

struct Copy {
  uint32_t dst, bytes, bar;
  int thread;
  bool landed;
  uint64_t phase;  // once landed: the mbarrier phase its complete-tx counted in
  TensorMapDesc map;
  int64_t coord[5];
};

std::map<uint32_t, Mbar> g_bars;
std::vector<Copy> g_copies;  // this block's copies, until every thread may see their bytes
int g_threads = 0;
bool g_used = false;
unsigned long long g_issued = 0;  // copies over all launches (tma_copies)
size_t g_nbars = 0;        // mbarriers initialised in this block
std::vector<Know> g_know;  // per thread
Know g_block_know;         // what every thread knows (joined at each __syncthreads)

int64_t knows(int lin, size_t idx) {
  int64_t k = idx < g_block_know.size() ? g_block_know[idx] : -1;
  const Know& own = g_know[(size_t)lin];
  return idx < own.size() ? std::max(k, own[idx]) : k;
}
void learn(int lin, size_t idx, int64_t phases) {
  Know& own = g_know[(size_t)lin];
  if (own.size() <= idx) own.resize(idx + 1, -1);
  own[idx] = std::max(own[idx], phases);
}

uint64_t magic(uint32_t addr) { return kMbarMagic ^ ((uint64_t)addr << 40); }

unsigned char* bar_bytes(uint32_t addr, const char* op) {
  if (addr % 8) faultf(-1, "%s: mbarrier address 0x%x is not 8-byte aligned (PTX ISA 9.7.13.15.1)", op, addr);
  unsigned char* host = shared_host(addr, 8);
  if (!host) faultf(-1, "%s: mbarrier address 0x%x lies in no __shared__ array or dynamic shared memory", op, addr);
  return host;
}

Mbar& bar_at(uint32_t addr, const char* op) {
  const unsigned char* host = bar_bytes(addr, op);
  auto it = g_bars.find(addr);
  if (it == g_bars.end() || !it->second.live)
    faultf(-1, "%s on shared 0x%x, which holds no initialised mbarrier (mbarrier.init first: PTX ISA 9.7.13.15.10)",
           op, addr);
  Mbar& b = it->second;
  uint64_t v;
  std::memcpy(&v, host, 8);
  if (v != magic(addr))
    faultf(-1, "%s: the 8 bytes of the mbarrier at shared 0x%x were overwritten by ordinary stores after its init",
           op, addr);
  if (knows(lane_linear(), b.idx) < 0)
    faultf(-1,
           "%s on the mbarrier at shared 0x%x, whose mbarrier.init by thread %d is not yet visible to this thread (no "
           "__syncthreads since, nor an mbarrier wait ordered after it)",
           op, addr, b.init_thread);
  return b;
}

void maybe_complete(Mbar& b) {  // 9.7.13.15.6
  if (b.pending != 0 || b.tx != 0) return;
  ++b.phase;
  b.pending = b.expected;
  b.prev_seen = false;
  Know k = b.carried;
  if (k.size() <= b.idx) k.resize(b.idx + 1, -1);
  k[b.idx] = std::max<int64_t>(k[b.idx], (int64_t)b.phase);
  b.completed.push_back(std::move(k));
  b.carried.clear();
  progress();
}

// The copy engine writes the box (5.5.3: tile mode, zero fill).
void write_box(const Copy& c, unsigned char* out) {
  const TensorMapDesc& m = c.map;
  const size_t e = (size_t)m.elem_bytes, row_bytes = m.box[0] * e;
  uint64_t rows = 1;
  for (int i = 1; i < m.rank; ++i) rows *= m.box[i];
  for (uint64_t row = 0; row < rows; ++row) {
    unsigned char* o = out + row * row_bytes;
    uint64_t rem = row, off = 0;
    bool in = true;
    for (int i = 1; i < m.rank; ++i) {
      const int64_t x = c.coord[i] + (int64_t)(rem % m.box[i]);
      rem /= m.box[i];
      if (x < 0 || (uint64_t)x >= m.dim[i]) in = false;
      else off += (uint64_t)x * m.stride[i];
    }
    std::memset(o, 0, row_bytes);
    if (!in) continue;
    const int64_t lo = c.coord[0] < 0 ? 0 : c.coord[0];
    const int64_t hi = std::min<int64_t>((int64_t)m.dim[0], c.coord[0] + (int64_t)m.box[0]);
    if (lo < hi)
      std::memcpy(o + (size_t)(lo - c.coord[0]) * e, (const unsigned char*)(uintptr_t)m.global + off + (uint64_t)lo * e,
                  (size_t)(hi - lo) * e);
  }
}

// Copies in flight on `bar` land now (the first look at the barrier after their issue).
void land(uint32_t bar, Mbar& b) {
  if (b.in_flight == 0) return;
  proxy_attribute(lane_linear());
  for (Copy& c : g_copies) {
    if (c.landed || c.bar != bar) continue;
    uint32_t at = 0;
    const int w = proxy_unfenced(c.dst, c.bytes, &at);
    if (w >= 0)
      faultf(w,
             "ordinary store into shared 0x%x while a cp.async.bulk.tensor (issued by thread %d) was writing it: the "
             "two writes are unordered",
             at, c.thread);
    write_box(c, shared_host(c.dst, c.bytes));
    proxy_emulator_write(c.dst, c.bytes);
    c.landed = true;
    c.phase = b.phase;
    --b.in_flight;
    b.tx -= c.bytes;  // complete-tx (9.7.13.15.5.2)
    if (b.tx < -kCountMax)
      faultf(c.thread,
             "tx-count of the mbarrier at shared 0x%x falls to %lld, below -(2^20 - 1) (PTX ISA 9.7.13.15.2): copies "
             "delivered far more bytes than expect_tx announced",
             bar, (long long)b.tx);
    maybe_complete(b);
  }
  progress();
}

// Whether thread lin (-1: every thread) knows copy c's phase complete.
bool seen_by(const Copy& c, int lin) {
  if (!c.landed) return false;
  const size_t idx = g_bars.at(c.bar).idx;
  const int64_t k = lin >= 0 ? knows(lin, idx) : idx < g_block_know.size() ? g_block_know[idx] : -1;
  return k > (int64_t)c.phase;
}

void prune() {  // copies every thread may see are no longer hazards
  size_t k = 0;
  for (size_t i = 0; i < g_copies.size(); ++i)
    if (!seen_by(g_copies[i], -1)) g_copies[k++] = g_copies[i];
  g_copies.resize(k);
}

bool overlaps(uint32_t a, uint32_t n, uint32_t b, uint32_t m) { return a < b + m && b < a + n; }

// One of `n` ranges of `len` bytes at `starts` overlapping copy c, or -1.
int first_overlap(const Copy& c, const uint32_t* starts, int n, uint32_t len) {
  for (int i = 0; i < n; ++i)
    if (overlaps(c.dst, c.bytes, starts[i], len)) return i;
  return -1;
}

void bounds(const uint32_t* starts, int n, uint32_t len, uint32_t* lo, uint32_t* hi) {
  *lo = ~0u, *hi = 0;
  for (int i = 0; i < n; ++i) *lo = std::min(*lo, starts[i]), *hi = std::max(*hi, starts[i] + len);
}

}  // namespace

// ------------------------------------------------------------ mbarrier
void mbarrier_init(uint32_t bar, uint32_t count) {
  unsigned char* host = bar_bytes(bar, "mbarrier.init");
  if (count < 1 || count > kCountMax)
    faultf(-1, "mbarrier.init of shared 0x%x with count %u, outside 1..2^20 - 1 (PTX ISA 9.7.13.15.9)", bar, count);
  Mbar& b = g_bars[bar];
  if (b.live)
    faultf(-1,
           "mbarrier.init of shared 0x%x, which holds a live mbarrier (%d copies in flight on it): undefined (PTX ISA "
           "9.7.13.15.9; mbarrier.inval is not modelled)",
           bar, b.in_flight);
  const int lin = lane_linear();
  proxy_activate();
  proxy_attribute(lin);
  const uint64_t v = magic(bar);
  std::memcpy(host, &v, 8);
  proxy_emulator_write(bar, 8);
  const size_t idx = b.init_thread >= 0 ? b.idx : g_nbars++;  // an address keeps its index
  b = Mbar{};
  b.live = true;
  b.idx = idx;
  b.expected = b.pending = count;
  b.init_thread = lin;
  learn(lin, idx, 0);
  progress();
}

void tma_fence(int lin) {
  for (auto& kv : g_bars)
    if (kv.second.init_thread == lin) kv.second.init_fenced = true;
}

void fence_mbarrier_init() {
  proxy_activate();
  tma_fence(lane_linear());
}

void mbarrier_arrive_expect_tx(uint32_t bar, uint32_t tx) {
  Mbar& b = bar_at(bar, "mbarrier.arrive.expect_tx");
  if (!b.prev_seen)
    faultf(-1,
           "mbarrier.arrive.expect_tx in phase %llu of the mbarrier at shared 0x%x before any mbarrier.try_wait "
           "returned true for phase %llu (PTX ISA 9.7.13.15.4: every phase is waited for before the next is arrived on)",
           (unsigned long long)b.phase, bar, (unsigned long long)b.phase - 1);
  if (b.tx + (int64_t)tx > kCountMax)
    faultf(-1, "expect_tx of %u bytes takes the tx-count of the mbarrier at shared 0x%x to %lld, over 2^20 - 1 (PTX ISA "
               "9.7.13.15.2)",
           tx, bar, (long long)(b.tx + tx));
  b.tx += tx;  // expect-tx, then the arrive-on (9.7.13.15.13)
  if (b.pending == 0)
    faultf(-1, "more arrive-on operations in phase %llu of the mbarrier at shared 0x%x than its expected count %u",
           (unsigned long long)b.phase, bar, b.expected);
  const int lin = lane_linear();
  join(b.carried, g_know[(size_t)lin]);  // release: what the arriver knows
  join(b.carried, g_block_know);
  --b.pending;
  maybe_complete(b);
  progress();
}

uint32_t mbarrier_try_wait_parity(uint32_t bar, uint32_t parity) {
  Mbar& b = bar_at(bar, "mbarrier.try_wait.parity");
  if (parity > 1) faultf(-1, "mbarrier.try_wait.parity with parity %u: only 0 and 1 are valid (PTX ISA 9.7.13.15.16)", parity);
  land(bar, b);
  if (parity != (b.phase & 1)) {  // the immediately preceding phase: complete
    if (b.phase > 0) {           // acquire: the phase and what its arrivers knew
      const int lin = lane_linear();
      b.prev_seen = true;
      join(g_know[(size_t)lin], b.completed[b.phase - 1]);
    }
    return 1;
  }
  spin_yield(bar, parity);  // the current phase: not complete; others run before the next look
  return 0;
}

std::string mbarrier_state(uint32_t bar) {
  auto it = g_bars.find(bar);
  if (it == g_bars.end() || !it->second.live) return "which holds no initialised mbarrier";
  const Mbar& b = it->second;
  char s[200];
  std::snprintf(s, sizeof s,
                "whose current phase is %llu (parity %llu), with %u of its %u arrivals pending, tx-count %lld and %d "
                "copies in flight",
                (unsigned long long)b.phase, (unsigned long long)(b.phase & 1), b.pending, b.expected, (long long)b.tx,
                b.in_flight);
  return s;
}

// ------------------------------------------------------------ cp.async.bulk.tensor
namespace {
void tma_load(int dims, uint32_t dst, uint64_t map, const int* coords, uint32_t bar) {
  const int lin = lane_linear();
  const void* mp = (const void*)(uintptr_t)map;
  if (map % 64)
    faultf(-1, "cp.async.bulk.tensor: the tensor map operand %p is not 64-byte aligned (a CUtensorMap's alignment)", mp);
  if (!on_fiber_stack(mp, 128)) {
    if (is_device(mp, 128))
      faultf(-1, "cp.async.bulk.tensor: a tensor map in global memory (%p) is not modelled (it needs "
                 "fence.proxy.tensormap::generic); pass it as a const __grid_constant__ kernel parameter", mp);
    faultf(-1, "cp.async.bulk.tensor: the tensor map operand %p is neither a kernel parameter (const __grid_constant__) "
               "nor in device memory", mp);
  }
  Copy c{};
  if (!tensormap_decode(mp, &c.map))
    faultf(-1, "cp.async.bulk.tensor: the tensor map operand %p holds no map made by cuTensorMapEncodeTiled (or one "
               "changed since)", mp);
  const TensorMapDesc& m = c.map;
  if (m.rank != dims) faultf(-1, "cp.async.bulk.tensor.%dd with a tensor map of rank %d", dims, m.rank);
  uint64_t bytes = (uint64_t)m.elem_bytes;
  for (int i = 0; i < dims; ++i) bytes *= m.box[i];
  if (dst % 128)
    faultf(-1, "cp.async.bulk.tensor: destination shared 0x%x is not 128-byte aligned (CUDA C++ Programming Guide, "
               "the TMA alignment table)", dst);
  unsigned char* host = shared_host(dst, bytes);
  if (!host)
    faultf(-1, "cp.async.bulk.tensor: the box (%llu bytes) at shared 0x%x does not lie within one __shared__ array or "
               "the dynamic shared memory", (unsigned long long)bytes, dst);
  Mbar& b = bar_at(bar, "cp.async.bulk.tensor");
  if (!b.init_fenced)
    faultf(-1, "cp.async.bulk.tensor completes on the mbarrier at shared 0x%x, whose mbarrier.init thread %d did not "
               "follow with fence.mbarrier_init (or fence.proxy.async) to make it visible to the copy engine", bar,
           b.init_thread);
  // The box's elements inside the tensor must be readable global memory.
  uint64_t first = m.global, last = m.global;
  bool any = true;
  for (int i = 0; i < dims; ++i) {
    c.coord[i] = coords[i];
    const int64_t lo = coords[i] < 0 ? 0 : coords[i];
    const int64_t hi = std::min<int64_t>((int64_t)m.dim[i], (int64_t)coords[i] + m.box[i]);
    if (lo >= hi) any = false;
    first += (uint64_t)lo * m.stride[i];
    last += (uint64_t)(hi - 1) * m.stride[i];
  }
  if (any && !is_device((const void*)(uintptr_t)first, last + m.elem_bytes - first))
    faultf(-1, "cp.async.bulk.tensor: the box's elements inside the tensor (0x%llx..0x%llx) lie outside every device "
               "allocation", (unsigned long long)first, (unsigned long long)(last + m.elem_bytes));
  prune();
  for (const Copy& o : g_copies)
    if (!o.landed && overlaps(o.dst, o.bytes, dst, (uint32_t)bytes))
      faultf(-1, "cp.async.bulk.tensor into shared 0x%x..0x%x, which a copy still in flight (thread %d's, into 0x%x) "
                 "will also write", dst, dst + (uint32_t)bytes, o.thread, o.dst);
  const int reader = wgmma_pending_reader(dst, dst + (uint32_t)bytes);
  if (reader >= 0)
    faultf(-1, "cp.async.bulk.tensor into shared 0x%x..0x%x, which a wgmma.mma_async of warp %d, not yet completed by a "
               "wgmma.wait_group, reads", dst, dst + (uint32_t)bytes, reader / 32);
  proxy_activate();
  proxy_attribute(lin);
  uint32_t at = 0;
  const int w = proxy_unfenced(dst, (size_t)bytes, &at);
  if (w >= 0)
    faultf(-1, "cp.async.bulk.tensor overwrites shared 0x%x, last written by thread %d with an ordinary store not "
               "followed by its fence.proxy.async: the two writes are unordered", at, w);
  std::memset(host, 0xFF, (size_t)bytes);  // what a read before the wait may see
  proxy_emulator_write(dst, (size_t)bytes);
  c.dst = dst;
  c.bytes = (uint32_t)bytes;
  c.bar = bar;
  c.thread = lin;
  g_copies.push_back(c);
  ++b.in_flight;
  g_used = true;
  ++g_issued;
  progress();
}
}  // namespace

void tma_load_2d(uint32_t dst, uint64_t map, int c0, int c1, uint32_t bar) {
  const int coords[2] = {c0, c1};
  tma_load(2, dst, map, coords, bar);
}

// ------------------------------------------------------------ what wgmma asks
void tma_check_async_read(const uint32_t* starts, int n, uint32_t len, int lin, const char* what) {
  if (g_copies.empty()) return;
  uint32_t lo, hi;
  bounds(starts, n, len, &lo, &hi);
  prune();
  for (const Copy& c : g_copies) {
    if (!overlaps(c.dst, c.bytes, lo, hi - lo)) continue;
    const int i = first_overlap(c, starts, n, len);
    if (i < 0) continue;
    if (!c.landed)
      faultf(-1, "%s reads shared 0x%x..0x%x, which a cp.async.bulk.tensor still in flight (thread %d's, on the mbarrier "
                 "at 0x%x) will write: no mbarrier.try_wait has seen its phase complete", what, starts[i],
             starts[i] + len, c.thread, c.bar);
    if (!seen_by(c, lin))
      faultf(-1, "%s reads shared 0x%x..0x%x, written by a cp.async.bulk.tensor whose completion this thread has not "
                 "observed (no true mbarrier.try_wait of its own on phase %llu of the mbarrier at 0x%x, and no "
                 "__syncthreads since another thread's)", what, starts[i], starts[i] + len,
             (unsigned long long)c.phase, c.bar);
  }
}

void tma_check_pending_write(const uint32_t* starts, int n, uint32_t len, const char* what) {
  if (g_copies.empty()) return;
  for (const Copy& c : g_copies) {
    if (c.landed) continue;
    const int i = first_overlap(c, starts, n, len);
    if (i >= 0)
      faultf(-1, "%s completes reading shared 0x%x..0x%x while a cp.async.bulk.tensor still in flight (thread %d's, on "
                 "the mbarrier at 0x%x) will write it", what, starts[i], starts[i] + len, c.thread, c.bar);
  }
}

bool tma_block_used() { return g_used; }
unsigned long long tma_copies() { return g_issued; }

void tma_block_begin(int threads) {
  g_bars.clear();
  g_copies.clear();
  g_threads = threads;
  g_used = false;
  g_nbars = 0;
  g_know.assign((size_t)threads, Know());
  g_block_know.clear();
}

void tma_block_sync() {
  if (g_bars.empty()) return;
  for (const Know& k : g_know) join(g_block_know, k);
}

void tma_block_end() {
  for (const Copy& c : g_copies)
    if (!c.landed)
      faultf(c.thread, "the block ends with a cp.async.bulk.tensor still in flight: this thread's copy into shared 0x%x "
                       "(%u bytes) on the mbarrier at 0x%x, whose phase no thread waited for", c.dst, c.bytes, c.bar);
  for (const auto& kv : g_bars)
    if (kv.second.live && kv.second.tx != 0)
      faultf(kv.second.init_thread, "the block ends with the mbarrier at shared 0x%x holding tx-count %lld (bytes "
                                    "announced by expect_tx that no copy delivered, or the reverse)",
             kv.first, (long long)kv.second.tx);
}

}  // namespace emu
