// reduce.wgsl: the backend's plain reductions (contract: kernels/cpu/kernels.h).
//   bias_grad:      db[c] = sum over (outer, inner) of dy[outer, c, inner]. One workgroup per
//                   channel: 256 threads walk the channel's outer*inner values (strided by
//                   256, the (o, i) position advanced without a division per element), each
//                   summing in blocks of 32 so no partial sum runs long, then a tree reduction
//                   in workgroup memory. Fixed order: deterministic.
//   bias_grad_rows: the [rows, cols] case (inner == 1): one thread per column sums its rows
//                   in order (adjacent threads read adjacent floats), in blocks of 32.
//   sumsq_partial:  sum of squares and non-finite counts over chunks of CHUNK = 8192 values,
//                   one workgroup per chunk (32 coalesced values per thread, then a tree);
//                   partial[4g..4g+3] = (sum as f32 bits, #NaN, #inf, scale e), g counted
//                   from the dispatch's first partial (the glue runs one dispatch per chunk
//                   of a buffer too large to bind whole). Non-finite values are detected
//                   from their bits (WGSL lets a compiler assume no NaN/inf in arithmetic)
//                   and left out of the sum.
//                   Scaled sums: a float32 square overflows above |x| ~ 1.8e19, which a finite
//                   gradient can reach while the CPU's double sum is still finite, so every
//                   partial sum is a pair (s, e) worth s * 2^(2e). e starts at 0 (then the
//                   arithmetic is exactly the plain float32 sum); when a value's exponent
//                   reaches e + SQ_EXP_MAX, e is raised so that it scales to ~2^30 and s
//                   is rescaled by the same power of two (ldexp: exact but for underflow of
//                   what is then negligible). Whenever e > 0, s >= 2^36 (a value at 2^30
//                   was squared into it, and a merge only shifts a sum past 2^100 down by
//                   2^64), so a part that a merge's ldexp flushes to zero is below 2^-63 of the
//                   total. Every shift is <= 0, the direction WGSL defines for ldexp.
//   sumsq_final:    one workgroup folds the partials (strided, then a tree) and writes the two
//                   float64 of the contract as IEEE-754 bit patterns (lo, hi u32 words):
//                   out[0] = sum x^2 (s with 2e added to its double exponent; NaN if any
//                   NaN, +inf if any inf, as the CPU's double sum gives), out[1] = number of
//                   non-finite values.
// Accuracy: float32 sums of at most ~40 sequential terms per level (32 per block, blocks of
// blocks, 8 tree levels); the CPU kernels sum in double, so the result differs from it by
// ~1e-6 relative at worst (test/kernels/backend-ops.test.ts states the tolerance).
// Measured on lavapipe (scripts/wgsl/ops-timing.mjs, device time, 2 shared cores so +-50%):
// bias_grad over 128x64x1024 70 ms, bias_grad_rows 128x4096 1.1 ms, sumsq over 8.4M values
// 62 ms (0.5 GB/s). A 2-level scheme (one workgroup per chunk of a channel, then a pass over
// the partials) would spread bias_grad over more workgroups for a real GPU; on lavapipe's
// two threads 64 workgroups already keep both busy, so the simpler form stays.

const WG: u32 = 256u;
const BLOCK: u32 = 32u;
const CHUNK: u32 = 8192u; // values per sumsq_partial workgroup (WG * 32)

struct Params {
  n: u32,      // bias: outer; sumsq: values (partial) or partial count (final)
  ch: u32,     // bias: channels; sumsq_partial: index of this dispatch's first partial
  inner: u32,
  wg_step_o: u32,  // bias: WG / inner
  wg_step_i: u32,  // bias: WG % inner
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(1) var<storage, read> part_in: array<u32>;
@group(0) @binding(2) var<storage, read_write> part_out: array<u32>;
@group(0) @binding(2) var<storage, read_write> out64: array<u32>;

var<workgroup> red: array<f32, WG>;
var<workgroup> red_nan: array<u32, WG>;
var<workgroup> red_inf: array<u32, WG>;
var<workgroup> red_e: array<i32, WG>;

// A scaled sum of squares: s * 2^(2e) (see sumsq_partial in the header).
struct Scaled {
  s: f32,
  e: i32,
}

const SQ_EXP_MAX: i32 = 50;    // values below 2^(e + 50): squares below 2^100, sums of 8192 below 2^113
const SQ_EXP_TARGET: i32 = 30; // a value that raises e scales to [2^30, 2^31)
const SQ_SUM_MAX: f32 = 1.2676506e30; // 2^100: a merged sum past it is shifted down by 2^64

// Adds v^2 (v finite, |v| bits `bits`) to a.
fn sq_add(a: Scaled, v: f32, bits: u32) -> Scaled {
  var r = a;
  let ev = i32(bits >> 23u) - 127;
  if (ev - r.e >= SQ_EXP_MAX) {
    let ne = ev - SQ_EXP_TARGET;
    r = Scaled(ldexp(r.s, 2 * (r.e - ne)), ne);
  }
  let y = ldexp(v, -r.e);
  r.s += y * y;
  return r;
}

fn sq_merge(a: Scaled, b: Scaled) -> Scaled {
  let e = max(a.e, b.e);
  let s = ldexp(a.s, 2 * (a.e - e)) + ldexp(b.s, 2 * (b.e - e));
  if (s >= SQ_SUM_MAX) { return Scaled(ldexp(s, -64), e + 32); }
  return Scaled(s, e);
}

fn tree_sum(tid: u32) {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn bias_grad(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u,
             @builtin(num_workgroups) nwg: vec3u) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= prm.ch) { return; } // uniform: depends on the workgroup only
  let m = prm.n * prm.inner;
  var o = tid / prm.inner;
  var i = tid - o * prm.inner;
  var total = 0.0;
  var part = 0.0;
  var cnt = 0u;
  for (var j = tid; j < m; j += WG) {
    part += src[(o * prm.ch + c) * prm.inner + i];
    cnt++;
    if (cnt == BLOCK) {
      total += part;
      part = 0.0;
      cnt = 0u;
    }
    i += prm.wg_step_i;
    o += prm.wg_step_o;
    if (i >= prm.inner) {
      i -= prm.inner;
      o++;
    }
  }
  red[tid] = total + part;
  tree_sum(tid);
  if (tid == 0u) { dst[c] = red[0]; }
}

@compute @workgroup_size(WG)
fn bias_grad_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= prm.ch) { return; }
  var total = 0.0;
  var part = 0.0;
  var cnt = 0u;
  for (var o = 0u; o < prm.n; o++) {
    part += src[o * prm.ch + c];
    cnt++;
    if (cnt == BLOCK) {
      total += part;
      part = 0.0;
      cnt = 0u;
    }
  }
  dst[c] = total + part;
}

@compute @workgroup_size(WG)
fn sumsq_partial(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u,
                 @builtin(num_workgroups) nwg: vec3u) {
  let g = wid.x + wid.y * nwg.x;
  let start = g * CHUNK;
  if (start >= prm.n) { return; } // uniform
  let end = min(start + CHUNK, prm.n);
  var s = Scaled(0.0, 0);
  var nan = 0u;
  var inf = 0u;
  for (var j = start + tid; j < end; j += WG) {
    let v = src[j];
    let bits = bitcast<u32>(v) & 0x7fffffffu;
    if (bits >= 0x7f800000u) {
      if (bits == 0x7f800000u) { inf++; } else { nan++; }
    } else {
      s = sq_add(s, v, bits);
    }
  }
  sq_tree(tid, s, nan, inf);
  if (tid == 0u) {
    let o = 4u * (prm.ch + g);
    part_out[o] = bitcast<u32>(red[0]);
    part_out[o + 1u] = red_nan[0];
    part_out[o + 2u] = red_inf[0];
    part_out[o + 3u] = bitcast<u32>(red_e[0]);
  }
}

// Folds every thread's scaled sum and counts over the workgroup: the result in red/red_e/
// red_nan/red_inf[0].
fn sq_tree(tid: u32, s: Scaled, nan: u32, inf: u32) {
  red[tid] = s.s;
  red_e[tid] = s.e;
  red_nan[tid] = nan;
  red_inf[tid] = inf;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (tid < k) {
      let m = sq_merge(Scaled(red[tid], red_e[tid]), Scaled(red[tid + k], red_e[tid + k]));
      red[tid] = m.s;
      red_e[tid] = m.e;
      red_nan[tid] += red_nan[tid + k];
      red_inf[tid] += red_inf[tid + k];
    }
    workgroupBarrier();
  }
}

// IEEE-754 double bits (lo, hi) of a float32 value (exact: every f32 is a double).
fn f32_to_f64_bits(v: f32) -> vec2u {
  let b = bitcast<u32>(v);
  let sign = b & 0x80000000u;
  let e = (b >> 23u) & 0xffu;
  var m = b & 0x7fffffu;
  if (e == 0xffu) { // inf or NaN (quiet)
    return vec2u(0u, sign | 0x7ff00000u | select(0u, 0x80000u, m != 0u));
  }
  var e64: u32;
  if (e == 0u) {
    if (m == 0u) { return vec2u(0u, sign); }
    let k = firstLeadingBit(m); // subnormal: value = 1.f * 2^(k - 149)
    m = (m << (23u - k)) & 0x7fffffu;
    e64 = k + 1023u - 149u;
  } else {
    e64 = e + 1023u - 127u;
  }
  return vec2u(m << 29u, sign | (e64 << 20u) | (m >> 3u));
}

// IEEE-754 double bits (lo, hi) of an unsigned integer (exact).
fn u32_to_f64_bits(c: u32) -> vec2u {
  if (c == 0u) { return vec2u(0u, 0u); }
  let k = firstLeadingBit(c);
  let mant = c ^ (1u << k); // the k bits below the leading one, as the top of a 52-bit fraction
  var hi: u32;
  var lo: u32;
  if (k > 20u) {
    hi = mant >> (k - 20u);
    lo = mant << (52u - k);
  } else {
    hi = mant << (20u - k);
    lo = 0u;
  }
  return vec2u(lo, ((1023u + k) << 20u) | hi);
}

@compute @workgroup_size(WG)
fn sumsq_final(@builtin(local_invocation_index) tid: u32) {
  var s = Scaled(0.0, 0);
  var nan = 0u;
  var inf = 0u;
  for (var g = tid; g < prm.n; g += WG) {
    s = sq_merge(s, Scaled(bitcast<f32>(part_in[4u * g]), bitcast<i32>(part_in[4u * g + 3u])));
    nan += part_in[4u * g + 1u];
    inf += part_in[4u * g + 2u];
  }
  sq_tree(tid, s, nan, inf);
  if (tid == 0u) {
    var sum = f32_to_f64_bits(red[0]);
    // times 2^(2e): e > 0 only with a sum >= 2^36 (normal), so its double exponent field
    // (bits 20..30 of the high word) takes 2e without carrying out of range.
    if (red_e[0] > 0) { sum.y += u32(2 * red_e[0]) << 20u; }
    if (red_inf[0] > 0u) { sum = vec2u(0u, 0x7ff00000u); }
    if (red_nan[0] > 0u) { sum = vec2u(0u, 0x7ff80000u); }
    let count = u32_to_f64_bits(red_nan[0] + red_inf[0]);
    out64[0] = sum.x;
    out64[1] = sum.y;
    out64[2] = count.x;
    out64[3] = count.y;
  }
}
