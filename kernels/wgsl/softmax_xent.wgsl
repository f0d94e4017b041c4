// softmax_xent.wgsl: softmax + cross-entropy with label smoothing eps (kernels/cpu/kernels.h,
// "loss"; kernels/cpu/softmax_xent.cc). logits/probs/dlogits [N, C] row-major f32, labels i32
// [N], loss [N]; targets t_ij = (1 - eps) [j == label_i] + eps / C.
//
// Forward, per row: m = max_j x_j; s = sum_j exp(x_j - m); probs_j = exp(x_j - m) / s, and the
// loss from log-probabilities (never log(probs), which underflows), written around m so a
// large common offset of the logits cancels exactly instead of in float:
//   loss = (1 - eps) * (log s - (x_label - m)) + eps * (log s - mean_j (x_j - m)).
// A label outside [0, C) gives loss NaN for its row and is counted in the dispatch's fault
// slot ([0] += 1, [1] = max(~row), [2] = max(key), [3] = max(~key) with
// key = bitcast<u32>(label) ^ 0x80000000, which orders as the i32 labels do), so every word
// is the same whatever order the threads run in. The runtime's next sync or download rejects
// with `softmaxXentFwd: label 12 at row 1 is outside [0, 10)` as the CPU kernel throws, or,
// for several, `3 labels are outside [0, 10), the first at row 1 (labels from -1 to 12)`
// (src/backend/webgpu/ops/loss.ts; runtime.ts, "Faults").
// Backward: dlogits_ij = scale * (probs_ij - t_ij), with on = (1 - eps) + eps/C and
// off = eps/C rounded on the host as the CPU kernel rounds them; a bad label gives a NaN row
// and is counted the same way (by the row's j = 0 thread).
//
// Thread mapping: xent_fwd_rows, one thread per row (small C: CIFAR's 10 classes, where a
// workgroup per row would leave 246 of 256 threads idle); xent_fwd_wg, one 256-thread
// workgroup per row (C > 64, e.g. ImageNet's 1000), with tree reductions for max and sums;
// xent_bwd, one thread per element. Measured on lavapipe (scripts/wgsl/ops-timing.mjs): forward
// 128x1000 2.6-16 ms (workgroup path), 128x10 0.07 ms (row path); backward 128x1000 0.6 ms.

const WG: u32 = 256u;
const ROWS_WG: u32 = 64u;

struct Params {
  n: u32,        // rows (fwd) or elements (bwd)
  c: u32,
  eps: f32,
  scale: f32,    // bwd
  on: f32,       // bwd
  off: f32,      // bwd
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> fault_fwd: array<atomic<u32>, 4>;

var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;

// A quiet NaN's bits, read at run time: a constant bitcast to NaN is a WGSL error.
var<private> nan_bits: u32 = 0x7fc00000u;

fn nan_f32() -> f32 {
  return bitcast<f32>(nan_bits);
}

fn bad_label(label: i32) -> bool {
  return label < 0 || label >= i32(prm.c);
}

// The order-preserving u32 key of an i32 label (kept in the fault slot's words 2 and 3).
fn label_key(label: i32) -> u32 {
  return bitcast<u32>(label) ^ 0x80000000u;
}

fn row_loss(r: u32, label: i32, x_label_m: f32, s: f32, sum_d: f32) -> f32 {
  if (bad_label(label)) {
    atomicAdd(&fault_fwd[0], 1u);
    atomicMax(&fault_fwd[1], ~r);
    atomicMax(&fault_fwd[2], label_key(label));
    atomicMax(&fault_fwd[3], ~label_key(label));
    return nan_f32();
  }
  let log_s = log(s);
  return (1.0 - prm.eps) * (log_s - x_label_m) + prm.eps * (log_s - sum_d / f32(prm.c));
}

@compute @workgroup_size(ROWS_WG)
fn xent_fwd_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * ROWS_WG;
  if (r >= prm.n) { return; }
  let base = r * prm.c;
  let label = labels[r];
  var m = logits[base];
  for (var j = 1u; j < prm.c; j++) { m = max(m, logits[base + j]); }
  var s = 0.0;
  var sum_d = 0.0;
  for (var j = 0u; j < prm.c; j++) {
    let d = logits[base + j] - m;
    s += exp(d);
    sum_d += d;
  }
  var x_label_m = 0.0;
  if (!bad_label(label)) { x_label_m = logits[base + u32(label)] - m; }
  for (var j = 0u; j < prm.c; j++) { probs[base + j] = exp(logits[base + j] - m) / s; }
  loss[r] = row_loss(r, label, x_label_m, s, sum_d);
}

@compute @workgroup_size(WG)
fn xent_fwd_wg(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u,
               @builtin(num_workgroups) nwg: vec3u) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= prm.n) { return; } // uniform: depends on the workgroup only
  let base = r * prm.c;
  var m = logits[base];
  for (var j = tid; j < prm.c; j += WG) { m = max(m, logits[base + j]); }
  red_a[tid] = m;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (tid < k) { red_a[tid] = max(red_a[tid], red_a[tid + k]); }
    workgroupBarrier();
  }
  m = red_a[0];
  workgroupBarrier(); // everyone has read the max before red_a is reused
  var s = 0.0;
  var sum_d = 0.0;
  for (var j = tid; j < prm.c; j += WG) {
    let d = logits[base + j] - m;
    s += exp(d);
    sum_d += d;
  }
  red_a[tid] = s;
  red_b[tid] = sum_d;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (tid < k) {
      red_a[tid] += red_a[tid + k];
      red_b[tid] += red_b[tid + k];
    }
    workgroupBarrier();
  }
  s = red_a[0];
  sum_d = red_b[0];
  let label = labels[r];
  var x_label_m = 0.0;
  if (!bad_label(label)) { x_label_m = logits[base + u32(label)] - m; }
  for (var j = tid; j < prm.c; j += WG) { probs[base + j] = exp(logits[base + j] - m) / s; }
  if (tid == 0u) { loss[r] = row_loss(r, label, x_label_m, s, sum_d); }
}

// Backward: probs at 1, labels at 2, dlogits at 3, its fault slot at 4.
@group(0) @binding(1) var<storage, read> probs_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> fault_bwd: array<atomic<u32>, 4>;

@compute @workgroup_size(WG)
fn xent_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= prm.n) { return; }
  let r = i / prm.c;
  let j = i - r * prm.c;
  let label = labels[r];
  if (bad_label(label)) {
    if (j == 0u) {
      atomicAdd(&fault_bwd[0], 1u);
      atomicMax(&fault_bwd[1], ~r);
      atomicMax(&fault_bwd[2], label_key(label));
      atomicMax(&fault_bwd[3], ~label_key(label));
    }
    dlogits[i] = nan_f32();
    return;
  }
  let t = select(prm.off, prm.on, u32(label) == j);
  dlogits[i] = prm.scale * (probs_in[i] - t);
}
