// batchnorm.wgsl: 2-D batch normalisation over NCHW (kernels/cpu/kernels.h; the CPU kernel is
// kernels/cpu/batchnorm.cc). x, y, dy, dx are [outer, ch, inner] (outer = N, inner = H*W); a
// channel is `outer` runs of `inner` floats, ch*inner apart. Per-channel vectors are [ch].
//
// Training forward, two dispatches:
//   bn_train_stats (one 256-thread workgroup per channel): two passes over the channel.
//     Pass 1 sums x: mean0 = sum / M (M = outer*inner). Pass 2 sums d = x - mean0 and d^2.
//     Then delta = sum(d)/M corrects mean0 (mean = mean0 + delta) and var = sum(d^2)/M -
//     delta^2 (biased). This is the two-pass algorithm: the squares are of deviations, so a
//     channel with mean 1000 and std 1 keeps its variance (x - mean0 is exact there, by
//     Sterbenz), where E[x^2] - E[x]^2 in float would lose every digit. Writes save_mean,
//     save_invstd = 1/sqrt(var + eps), the running statistics in place (running_var with the
//     unbiased var * M/(M-1)), and stats[4c..4c+3] = (mean0, delta, gamma*invstd, beta).
//   bn_train_apply (one thread per element): y = ((x - mean0) - delta) * scale + shift. The mean
//     is kept as the pair (mean0, delta), so a large mean's float rounding does not reach y.
// Evaluation forward: bn_eval_stats (one thread per channel) writes stats = (rm, 0,
//   gamma / sqrt(rv + eps), beta), then bn_train_apply gives y = (x - rm) * scale + beta.
//   (A single per-element kernel recomputing the scale took 95 ms against 83 ms for
//   128x64x32x32 on lavapipe, scripts/wgsl/bn-div.mjs: a sqrt and a division per element.)
// Backward, two dispatches (the second only when dx is wanted):
//   bn_bwd_reduce (workgroup per channel): sdy = sum dy, sdyx = sum dy * (x - mean_f),
//     sx = sum (x - mean_f) about the saved float mean_f; delta = sx / M recovers the exact
//     batch mean as the CPU kernel does, sdyx -= delta * sdy. dbeta = sdy,
//     dgamma = sdyx * invstd, and coef[4c..4c+3] = (k = gamma*invstd, a = sdy/M,
//     b = sdyx*invstd^2/M, delta).
//   bn_bwd_dx (one thread per element): dx = k * ((dy - a) - ((x - mean_f) - delta) * b).
// Workgroup sums: each thread walks its channel's values with stride 256 (the (o, i)
// position advanced without a division per element), summing in blocks of 32 so that no
// partial sum runs long, then a tree reduction: deterministic; a value passes through at most
// 32 + M/8192 + 8 float32 additions (against the CPU's double sums; the webgpu tolerances of
// test/kernels/norm.test.ts state the bound).
// Measured on lavapipe (scripts/wgsl/ops-timing.mjs, 128x64x32x32, 2 shared cores so +-50%):
// training forward 160-370 ms (3 passes over x), evaluation 83 ms, backward 310-570 ms.

const WG: u32 = 256u;
const BLOCK: u32 = 32u;

struct Params {
  outer: u32,
  ch: u32,
  inner: u32,
  total: u32,      // outer * ch * inner
  step_o: u32,     // WG / inner
  step_i: u32,     // WG % inner
  eps: f32,
  momentum: f32,
  unbias: f32,     // M / (M - 1)
}

@group(0) @binding(0) var<uniform> prm: Params;

var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;
var<workgroup> red_c: array<f32, WG>;

// Position of a channel's j-th value in the flat tensor, walked with stride WG.
struct Walk { o: u32, i: u32 }

fn walk_start(tid: u32) -> Walk {
  let o = tid / prm.inner;
  return Walk(o, tid - o * prm.inner);
}

fn walk_next(w: Walk) -> Walk {
  var r = Walk(w.o + prm.step_o, w.i + prm.step_i);
  if (r.i >= prm.inner) {
    r.i -= prm.inner;
    r.o++;
  }
  return r;
}

fn at(w: Walk, c: u32) -> u32 {
  return (w.o * prm.ch + c) * prm.inner + w.i;
}

// Tree sums of red_a, red_b, red_c (the caller has written its slot; ends after a barrier).
fn tree3(tid: u32) {
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (tid < k) {
      red_a[tid] += red_a[tid + k];
      red_b[tid] += red_b[tid + k];
      red_c[tid] += red_c[tid + k];
    }
    workgroupBarrier();
  }
}

fn channel_of(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// ---------------------------------------------------------------- training forward
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> save_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> save_invstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(7) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(8) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(WG)
fn bn_train_stats(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u,
                  @builtin(num_workgroups) nwg: vec3u) {
  let c = channel_of(wid, nwg);
  if (c >= prm.ch) { return; } // uniform: depends on the workgroup only
  let m = prm.outer * prm.inner;
  let mf = f32(m);
  // Pass 1: the sum.
  var total = 0.0;
  var part = 0.0;
  var cnt = 0u;
  var w = walk_start(tid);
  for (var j = tid; j < m; j += WG) {
    part += x[at(w, c)];
    cnt++;
    if (cnt == BLOCK) { total += part; part = 0.0; cnt = 0u; }
    w = walk_next(w);
  }
  red_a[tid] = total + part;
  red_b[tid] = 0.0;
  red_c[tid] = 0.0;
  tree3(tid);
  let mean0 = red_a[0] / mf;
  workgroupBarrier(); // everyone has read red_a[0]
  // Pass 2: deviations from mean0 and their squares.
  var t1 = 0.0;
  var p1 = 0.0;
  var t2 = 0.0;
  var p2 = 0.0;
  cnt = 0u;
  w = walk_start(tid);
  for (var j = tid; j < m; j += WG) {
    let d = x[at(w, c)] - mean0;
    p1 += d;
    p2 += d * d;
    cnt++;
    if (cnt == BLOCK) { t1 += p1; t2 += p2; p1 = 0.0; p2 = 0.0; cnt = 0u; }
    w = walk_next(w);
  }
  red_a[tid] = t1 + p1;
  red_b[tid] = t2 + p2;
  red_c[tid] = 0.0;
  tree3(tid);
  if (tid == 0u) {
    let delta = red_a[0] / mf;
    let var_b = max(red_b[0] / mf - delta * delta, 0.0);
    let invstd = 1.0 / sqrt(var_b + prm.eps);
    let mean = mean0 + delta;
    save_mean[c] = mean;
    save_invstd[c] = invstd;
    running_mean[c] = (1.0 - prm.momentum) * running_mean[c] + prm.momentum * mean;
    running_var[c] = (1.0 - prm.momentum) * running_var[c] + prm.momentum * (var_b * prm.unbias);
    stats[4u * c] = mean0;
    stats[4u * c + 1u] = delta;
    stats[4u * c + 2u] = gamma[c] * invstd;
    stats[4u * c + 3u] = beta[c];
  }
}

// Apply: x at 1, stats at 2, y at 3.
@group(0) @binding(2) var<storage, read> stats_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> y3: array<f32>;

@compute @workgroup_size(WG)
fn bn_train_apply(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= prm.total) { return; }
  let c = (i / prm.inner) % prm.ch;
  let s = 4u * c;
  y3[i] = ((x[i] - stats_in[s]) - stats_in[s + 1u]) * stats_in[s + 2u] + stats_in[s + 3u];
}

// ---------------------------------------------------------------- evaluation forward
// bn_eval_stats, one thread per channel: gamma, beta, running mean, running var at 1..4,
// stats at 5 (then bn_train_apply).
@group(0) @binding(1) var<storage, read> gamma1: array<f32>;
@group(0) @binding(2) var<storage, read> beta2: array<f32>;
@group(0) @binding(3) var<storage, read> rm_in: array<f32>;
@group(0) @binding(4) var<storage, read> rv_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats5: array<f32>;

@compute @workgroup_size(WG)
fn bn_eval_stats(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * WG;  // the glue's grid(ch, WG) folds large counts into y
  if (c >= prm.ch) { return; }
  stats5[4u * c] = rm_in[c];
  stats5[4u * c + 1u] = 0.0;
  stats5[4u * c + 2u] = gamma1[c] / sqrt(rv_in[c] + prm.eps);
  stats5[4u * c + 3u] = beta2[c];
}

// ---------------------------------------------------------------- backward
// x, dy, gamma, save_mean, save_invstd at 1..5; dgamma, dbeta, coef at 6..8.
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> gamma3: array<f32>;
@group(0) @binding(4) var<storage, read> mean_in: array<f32>;
@group(0) @binding(5) var<storage, read> invstd_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> coef: array<f32>;

@compute @workgroup_size(WG)
fn bn_bwd_reduce(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u,
                 @builtin(num_workgroups) nwg: vec3u) {
  let c = channel_of(wid, nwg);
  if (c >= prm.ch) { return; } // uniform
  let m = prm.outer * prm.inner;
  let mf = f32(m);
  let mean_f = mean_in[c];
  var ta = 0.0; var pa = 0.0;
  var tb = 0.0; var pb = 0.0;
  var tc = 0.0; var pc = 0.0;
  var cnt = 0u;
  var w = walk_start(tid);
  for (var j = tid; j < m; j += WG) {
    let k = at(w, c);
    let g = dy[k];
    let xm = x[k] - mean_f;
    pa += g;
    pb += g * xm;
    pc += xm;
    cnt++;
    if (cnt == BLOCK) { ta += pa; tb += pb; tc += pc; pa = 0.0; pb = 0.0; pc = 0.0; cnt = 0u; }
    w = walk_next(w);
  }
  red_a[tid] = ta + pa;
  red_b[tid] = tb + pb;
  red_c[tid] = tc + pc;
  tree3(tid);
  if (tid == 0u) {
    let invstd = invstd_in[c];
    let sdy = red_a[0];
    let delta = red_c[0] / mf;
    let sdyx = red_b[0] - delta * sdy;
    dbeta[c] = sdy;
    dgamma[c] = sdyx * invstd;
    coef[4u * c] = gamma3[c] * invstd;
    coef[4u * c + 1u] = sdy / mf;
    coef[4u * c + 2u] = sdyx * invstd * invstd / mf;
    coef[4u * c + 3u] = delta;
  }
}

// dx: x, dy, save_mean, coef at 1..4, dx at 5.
@group(0) @binding(3) var<storage, read> mean3: array<f32>;
@group(0) @binding(4) var<storage, read> coef_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn bn_bwd_dx(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= prm.total) { return; }
  let c = (i / prm.inner) % prm.ch;
  let s = 4u * c;
  dx[i] = coef_in[s] * ((dy[i] - coef_in[s + 1u]) - ((x[i] - mean3[c]) - coef_in[s + 3u]) * coef_in[s + 2u]);
}
