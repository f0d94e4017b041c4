// conv2d_common.wgsl: the parameter block shared by conv2d_fwd.wgsl, conv2d_bwd_data.wgsl and
// conv2d_bwd_filter.wgsl (included), with the layout helpers. Layouts as in kernels/cpu/kernels.h:
// x, dx [N, C, H, W]; w, dw [K, C, R, S] (OIHW); y, dy [N, K, P, Q]; bias, db [K].
// The implicit-GEMM entries also get their GEMM sizes (gm x gn, reduction gk), the number of
// blocks and, for split-K, the reduction length per split.

struct Params {
  n: u32, c: u32, h: u32, w: u32,
  k: u32, r: u32, s: u32,
  sh: u32, sw: u32, ph: u32, pw: u32, dh: u32, dw: u32,
  p: u32, q: u32,
  gm: u32, gn: u32, gk: u32,
  tiles_n: u32, tiles: u32,
  k_chunk: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// Block origin of workgroup `wid` in the GEMM (blocks numbered n-fastest, folded over x/y);
// x = -1 past the last block (the dispatch rounds up).
fn block_origin(wid: vec3u, nwg: vec3u) -> vec2i {
  let block = wid.x + wid.y * nwg.x;
  if (block >= p.tiles) { return vec2i(-1, -1); }
  return vec2i(i32((block / p.tiles_n) * BM), i32((block % p.tiles_n) * BN));
}
