// sgd.wgsl: PyTorch's SGD step with momentum, weight decay and optional Nesterov (dampening 0;
// kernels/cpu/kernels.h, kernels/cpu/sgd.cc), in float32 like PyTorch's and the CPU kernel:
//   g' = g + wd * w;  v = momentum * v + g';  w -= lr * (nesterov ? g' + momentum * v : v).
// With momentum == 0 the buffer is not read (v = g' is written), so an uninitialised buffer
// cannot inject NaN. Flat arrays of n floats: g at binding 1, w and v (updated in place) at
// 2 and 3. One thread per element (folded x/y grid, runtime.ts grid()): memory-bound, three
// loads and two stores per element, nothing to tile. 83 ms for 8.4M elements on lavapipe
// (2 GB/s, scripts/wgsl/ops-timing.mjs).

const WG: u32 = 256u;

struct Params {
  n: u32,
  lr: f32,
  momentum: f32,
  weight_decay: f32,
  nesterov: u32,
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(WG)
fn sgd_update(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= prm.n) { return; }
  let wi = w[i];
  let gd = g[i] + prm.weight_decay * wi;
  var vi = gd;
  if (prm.momentum != 0.0) { vi = prm.momentum * v[i] + gd; }
  v[i] = vi;
  let step = select(vi, gd + prm.momentum * vi, prm.nesterov != 0u);
  w[i] = wi - prm.lr * step;
}
