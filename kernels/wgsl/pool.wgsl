// pool.wgsl: 2-D max and average pooling, forward and backward (contract: kernels/cpu/kernels.h
// and kernels/cpu/pool2d.cc).
//
// Layouts: x, dx [N, C, H, W]; y, dy, argmax [N, C, P, Q], NCHW and dense; argmax is int32,
// the flat index h*W + w inside the plane. Window (p, q) covers input rows
// p*strideH - padH .. + kh - 1 (columns likewise), clipped to the image.
//   max fwd: first maximum in row-major window order; a NaN wins (the last one); padding never
//            wins; a window wholly in padding gives y = -inf, argmax = -1.
//   avg fwd: sum / divisor; the divisor is the window clipped to the padded input
//            (count_include_pad) or the in-bounds count (0 elements: y = 0). A window wholly
//            inside the image multiplies by inv_area = 1/(kh*kw) (rounded on the host), as the
//            CPU kernel does, so both backends round the same way there.
//
// Thread mapping:
//   *_fwd:         one thread per output element (n, c, p, q).
//   *_bwd:         gather form, one thread per dx element: it visits the output windows that
//                  cover it, in (p, q) row-major order, and adds their contribution (max: dy
//                  where argmax is this element; avg: dy / divisor). No atomics, deterministic,
//                  and the additions happen in the CPU kernel's order (it scatters outputs in
//                  that order), so max-pool dx matches the CPU bit for bit.
//   avgpool2d_global_fwd: global average pooling (the window is the whole plane, pad 0): a
//                  workgroup reduction per (n, c) plane, TPP threads per plane and 256/TPP
//                  planes per workgroup. TPP grows with the plane (about 32 values a thread,
//                  capped at 256: one workgroup per plane from 91x91 up); each thread sums
//                  strided values in blocks of 32, then a log2(TPP)-level tree. Its
//                  backward (avgpool2d_global_bwd) is a broadcast, one thread per dx element.
// Design note (lavapipe, scripts/wgsl/ops-timing.mjs, device time): one 256-thread workgroup per
// plane whatever its size was tried first and lost badly on small planes, since lavapipe
// runs a workgroup barrier as a switch between its 8-lane coroutines: 128x512 planes of 7x7
// took 1264 ms with TPP 256, 22 ms with TPP 4 (16 values a thread) and 13 ms with TPP 2
// (32 a thread); 32x64 planes of 32x32: 77, 19 and 12 ms. One thread per output elsewhere:
// the windows are small and the loops memory-bound (max pool 32x64x32x32 2x2/2: 15 ms
// forward, 86 ms for the gather backward, whose index arithmetic has ~7 integer divisions
// per dx element; the global backward, a broadcast, has its own entry: 163 -> 36 ms for
// 128x512x7x7).
// A range too long for one dispatch dimension is folded into x and y (runtime.ts grid()).

const WG: u32 = 256u;
const BLOCK: u32 = 32u;

struct Params {
  total: u32,       // outputs (fwd), dx elements (bwd), planes (global)
  h: u32, w: u32,
  p: u32, q: u32,
  kh: u32, kw: u32,
  sh: u32, sw: u32,
  ph: u32, pw: u32,
  include_pad: u32,
  inv_area: f32,    // 1 / (kh * kw), rounded to f32 on the host
}

@group(0) @binding(0) var<uniform> prm: Params;

// Forward: x at 1, y at 2 (max: argmax at 3).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<i32>;
// Max backward: dy at 1, argmax at 2, dx at 3. Avg backward: dy at 1, dx at 2.
@group(0) @binding(2) var<storage, read> argmax_in: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx3: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx2: array<f32>;

var<workgroup> red: array<f32, WG>;
// -inf's bits, read at run time: a constant bitcast to a non-finite value is a WGSL error.
var<private> neg_inf_bits: u32 = 0xff800000u;

fn flat(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// One output's window: in-bounds rows [h0, h1), columns [w0, w1), the count_include_pad
// divisor, and whether it lies wholly inside the image.
struct Win { h0: i32, h1: i32, w0: i32, w1: i32, div_pad: i32, inside: bool }

fn window(op: u32, oq: u32) -> Win {
  let H = i32(prm.h);
  let W = i32(prm.w);
  let hs = i32(op * prm.sh) - i32(prm.ph);
  let ws = i32(oq * prm.sw) - i32(prm.pw);
  let he = min(hs + i32(prm.kh), H + i32(prm.ph));
  let we = min(ws + i32(prm.kw), W + i32(prm.pw));
  var r: Win;
  r.h0 = max(hs, 0);
  r.h1 = min(he, H);
  r.w0 = max(ws, 0);
  r.w1 = min(we, W);
  r.div_pad = (he - hs) * (we - ws);
  r.inside = hs >= 0 && ws >= 0 && hs + i32(prm.kh) <= H && ws + i32(prm.kw) <= W;
  return r;
}

fn divisor(r: Win) -> i32 {
  if (prm.include_pad != 0u) { return r.div_pad; }
  return max(0, r.h1 - r.h0) * max(0, r.w1 - r.w0);
}

@compute @workgroup_size(WG)
fn maxpool2d_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= prm.total) { return; }
  let pq = prm.p * prm.q;
  let plane = i / pq;
  let rem = i - plane * pq;
  let op = rem / prm.q;
  let r = window(op, rem - op * prm.q);
  let W = i32(prm.w);
  let base = plane * prm.h * prm.w;
  var best = bitcast<f32>(neg_inf_bits);
  var arg = -1;
  for (var h = r.h0; h < r.h1; h++) {
    for (var w = r.w0; w < r.w1; w++) {
      let v = x[base + u32(h * W + w)];
      if (arg < 0 || v > best || is_nan(v)) {
        best = v;
        arg = h * W + w;
      }
    }
  }
  y[i] = best;
  argmax[i] = arg;
}

@compute @workgroup_size(WG)
fn avgpool2d_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= prm.total) { return; }
  let pq = prm.p * prm.q;
  let plane = i / pq;
  let rem = i - plane * pq;
  let op = rem / prm.q;
  let r = window(op, rem - op * prm.q);
  let W = i32(prm.w);
  let base = plane * prm.h * prm.w;
  var sum = 0.0;
  for (var h = r.h0; h < r.h1; h++) {
    for (var w = r.w0; w < r.w1; w++) {
      sum += x[base + u32(h * W + w)];
    }
  }
  if (r.inside) {
    y[i] = sum * prm.inv_area;
  } else {
    let d = divisor(r);
    y[i] = select(0.0, sum / f32(d), d > 0);
  }
}

// Output rows (or columns) whose window covers input row `hh`: [lo, hi].
fn covering(hh: u32, pad: u32, k: u32, stride: u32, n: u32) -> vec2i {
  let t = i32(hh + pad) - i32(k) + 1;
  let lo = select(0, (t + i32(stride) - 1) / i32(stride), t > 0);
  let hi = min(i32((hh + pad) / stride), i32(n) - 1);
  return vec2i(lo, hi);
}

// Where input element i (flat over N*C*H*W) sits for the backward gathers: its index within
// its plane, the first output of its plane, and the output rows/columns whose windows cover it.
struct BwdSite {
  me: u32,
  obase: u32,
  rp: vec2i,
  rq: vec2i,
}

fn bwd_site(i: u32) -> BwdSite {
  let hw = prm.h * prm.w;
  let plane = i / hw;
  let me = i - plane * hw;
  let hh = me / prm.w;
  let ww = me - hh * prm.w;
  return BwdSite(me, plane * prm.p * prm.q, covering(hh, prm.ph, prm.kh, prm.sh, prm.p),
                 covering(ww, prm.pw, prm.kw, prm.sw, prm.q));
}

@compute @workgroup_size(WG)
fn maxpool2d_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= prm.total) { return; }
  let st = bwd_site(i);
  var g = 0.0;
  for (var op = st.rp.x; op <= st.rp.y; op++) {
    for (var oq = st.rq.x; oq <= st.rq.y; oq++) {
      let o = st.obase + u32(op) * prm.q + u32(oq);
      if (argmax_in[o] == i32(st.me)) { g += x[o]; }
    }
  }
  dx3[i] = g;
}

@compute @workgroup_size(WG)
fn avgpool2d_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= prm.total) { return; }
  let st = bwd_site(i);
  var g = 0.0;
  for (var op = st.rp.x; op <= st.rp.y; op++) {
    for (var oq = st.rq.x; oq <= st.rq.y; oq++) {
      let dy = x[st.obase + u32(op) * prm.q + u32(oq)];
      let r = window(u32(op), u32(oq));
      if (r.inside) {
        g += dy * prm.inv_area;
      } else {
        let d = divisor(r);
        if (d > 0) { g += dy / f32(d); }
      }
    }
  }
  dx2[i] = g;
}

// Global average pooling backward: dx = dy[plane] / (H*W), one thread per dx element (the
// CPU kernel's interior-window rounding: dy * inv_area).
@compute @workgroup_size(WG)
fn avgpool2d_global_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= prm.total) { return; }
  dx2[i] = x[i / (prm.h * prm.w)] * prm.inv_area;
}

// Global average pooling: the window is the whole plane (pad 0). TPP threads per plane
// (a power of two <= WG, chosen on the host from H*W), WG / TPP planes per workgroup; each
// thread sums every TPP-th value of its plane (in blocks of 32), then a tree of log2(TPP)
// levels within the plane's slice of workgroup memory.
const TPP: u32 = 64u;

@compute @workgroup_size(WG)
fn avgpool2d_global_fwd(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u,
                        @builtin(num_workgroups) nwg: vec3u) {
  let lane = tid % TPP;
  let plane = (wid.x + wid.y * nwg.x) * (WG / TPP) + tid / TPP;
  let hw = prm.h * prm.w;
  var total = 0.0;
  if (plane < prm.total) {
    let base = plane * hw;
    var part = 0.0;
    var cnt = 0u;
    for (var j = lane; j < hw; j += TPP) {
      part += x[base + j];
      cnt++;
      if (cnt == BLOCK) {
        total += part;
        part = 0.0;
        cnt = 0u;
      }
    }
    total += part;
  }
  if (TPP == 1u) {
    if (plane < prm.total) { y[plane] = total * prm.inv_area; }
    return;
  }
  red[tid] = total;
  workgroupBarrier();
  for (var s = TPP / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  if (lane == 0u && plane < prm.total) { y[plane] = red[tid] * prm.inv_area; }
}
