// pointwise.wgsl: one thread per element, for the flat elementwise ops of the backend
// (kernels/cpu/kernels.h gives the exact formulas): bias add over [outer, ch, inner], ReLU
// forward/backward, add, mul, axpby, scale, fill and an offset copy.
//
// Each entry point reads its inputs at bindings 1.. and writes its output at the binding after
// them (the dispatcher's convention, src/backend/webgpu/runtime.ts); Params sits at binding 0
// and every entry uses the fields it needs. A range too long for one dispatch dimension is
// folded into x and y (runtime.ts grid()), so the element index is gid.x + gid.y * nwg.x * WG.
//
// These kernels are memory-bound: one f32 read or two and one write per thread. A grid-stride
// loop was not faster on lavapipe and adds a loop to every kernel, so there is none.

const WG: u32 = 256u;

struct Params {
  n: u32,
  alpha: f32,   // axpby alpha, scale alpha, fill value
  beta: f32,    // axpby beta
  ch: u32,      // bias: channels
  inner: u32,   // bias: elements per (outer, channel)
  src_off: u32, // copy: element offsets
  dst_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// One input, one output.
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read_write> y1: array<f32>;
// Two inputs, one output.
@group(0) @binding(2) var<storage, read> x2: array<f32>;
@group(0) @binding(3) var<storage, read_write> y2: array<f32>;
// Output only (fill), or read-modify-write (axpby).
@group(0) @binding(1) var<storage, read_write> y0: array<f32>;

fn index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn bias_add(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y2[i] = x1[i] + x2[(i / p.inner) % p.ch];
}

@compute @workgroup_size(WG)
fn relu_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y1[i] = max(x1[i], 0.0);
}

// dx = dy * (y > 0): x1 = y, x2 = dy.
@compute @workgroup_size(WG)
fn relu_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y2[i] = select(0.0, x2[i], x1[i] > 0.0);
}

@compute @workgroup_size(WG)
fn add(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y2[i] = x1[i] + x2[i];
}

@compute @workgroup_size(WG)
fn mul(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y2[i] = x1[i] * x2[i];
}

@compute @workgroup_size(WG)
fn scale(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y1[i] = p.alpha * x1[i];
}

// y = alpha * x + beta * y. beta == 0 ignores y's old contents (NaN does not leak), as on CPU.
@compute @workgroup_size(WG)
fn axpby(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let ax = p.alpha * x1[i];
  y1[i] = select(ax + p.beta * y1[i], ax, p.beta == 0.0);
}

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y0[i] = p.alpha;
}

@compute @workgroup_size(WG)
fn copy(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y1[p.dst_off + i] = x1[p.src_off + i];
}
