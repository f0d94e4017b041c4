// dropout.wgsl: inverted dropout forward with the CPU kernel's exact mask (kernels/cpu/
// elementwise.cc): h = splitmix64(seed + (i+1) * 0x9E3779B97F4A7C15), u = (h >> 40) / 2^24,
// keep iff u >= p; mask[i] = keep ? keep_scale : 0 (keep_scale = 1/(1-p) rounded to f32 on the
// host as the CPU rounds it, 0 when p == 1); y[i] = x[i] * mask[i].
//
// WGSL has no 64-bit integers: a u64 is a vec2u (lo, hi) and the wrapping 64-bit multiply is
// built from 16-bit limbs (mul32_wide) plus the two cross products that land in the high word.
// Every step is exact integer arithmetic, so the mask matches the CPU's bit for bit.
// Thread mapping: one thread per element (folded x/y grid, runtime.ts grid()). The hash costs
// ~40 integer ops per element. Measured on lavapipe (scripts/wgsl/ops-timing.mjs): 78 ms for 8.4M
// elements, against 83 ms for sgd_update's pure memory traffic on the same n, so the hash is
// not what limits it.

const WG: u32 = 256u;

struct Params {
  n: u32,
  p: f32,
  keep_scale: f32,
  seed_lo: u32,
  seed_hi: u32,
  base: u32,  // index of element 0 of this dispatch (the glue chunks a buffer too large to bind)
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// Full 64-bit product of two u32, as (lo, hi).
fn mul32_wide(a: u32, b: u32) -> vec2u {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  let lo = (p00 & 0xffffu) | (mid << 16u);
  let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2u(lo, hi);
}

// a * b mod 2^64.
fn mul64(a: vec2u, b: vec2u) -> vec2u {
  let low = mul32_wide(a.x, b.x);
  return vec2u(low.x, low.y + a.x * b.y + a.y * b.x);
}

fn add64(a: vec2u, b: vec2u) -> vec2u {
  let lo = a.x + b.x;
  return vec2u(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

// a >> k for 0 < k < 32.
fn shr64(a: vec2u, k: u32) -> vec2u {
  return vec2u((a.x >> k) | (a.y << (32u - k)), a.y >> k);
}

fn splitmix64(z0: vec2u) -> vec2u {
  var z = z0;
  z = mul64(z ^ shr64(z, 30u), vec2u(0x1CE4E5B9u, 0xBF58476Du));
  z = mul64(z ^ shr64(z, 27u), vec2u(0x133111EBu, 0x94D049BBu));
  return z ^ shr64(z, 31u);
}

@compute @workgroup_size(WG)
fn dropout_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= prm.n) { return; }
  let golden = vec2u(0x7F4A7C15u, 0x9E3779B9u);
  let h = splitmix64(add64(vec2u(prm.seed_lo, prm.seed_hi), mul64(vec2u(prm.base + i + 1u, 0u), golden)));
  let u = f32(h.y >> 8u) * (1.0 / 16777216.0);
  let m = select(0.0, prm.keep_scale, u >= prm.p);
  let xi = x[i];
  mask[i] = m;
  y[i] = xi * m;
}
