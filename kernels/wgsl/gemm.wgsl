// gemm.wgsl: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, the contract of gemm_f32 in
// kernels/cpu/kernels.h. Row-major with row strides lda, ldb, ldc; A is stored K x M when
// TRANS_A, B is stored N x K when TRANS_B. beta == 0 ignores C's old contents (NaN does not
// leak); columns of C between N and ldc are never written. A, B and C start at element
// a_off, b_off, c_off of their bindings (0 unless the glue splits a problem whose buffers are
// too large to bind whole into views, src/backend/webgpu/ops/gemm.ts).
//
// Mapping: one workgroup per BM x BN block of C (the tile in gemm_tile.wgsl: 256 threads,
// 4 x 4 outputs each by default). Blocks are numbered linearly, n fastest, from the workgroup
// id folded over x/y (runtime.ts grid()), so any M*N fits the dispatch limits. The reduction
// runs BK columns of op(A) at a time through workgroup memory.
//
// Loads. VEC_A / VEC_B (chosen by the glue, src/backend/webgpu/ops/gemm.ts) read an operand
// as vec4 along its contiguous dimension: allowed when the row stride and the contiguous size
// (K for plain A / transposed B, M for transposed A, N for plain B) are multiples of 4, so a
// vec4 is either wholly inside the matrix or wholly outside. Otherwise the same binding is read
// one float at a time (a[i >> 2][i & 3]). Both operands are bound as array<vec4f>; their
// buffers are 16-byte multiples (the runtime's size classes).
//
// Tile shape, measured on lavapipe (llvmpipe, Mesa 25.0.7, on 2 cores shared with other
// work; M=N=K, vec4 loads; `node scripts/wgsl/gemm-tiles.mjs` after `npx tsc`: device time by
// timestamp query, configurations interleaved, best of 5 GFLOP/s; two runs, load average ~3):
//   BM x BN / BK / TM x TN     256^3        512^3        1024^3
//   64 x 64 / 16 / 4 x 4       3.2 | 6.3    2.0 | 4.0    3.8 | 4.0
//   64 x 64 / 32 / 4 x 4       2.9          3.0          3.2
//   32 x 32 / 16 / 4 x 4       1.7          2.3          2.9
//   128 x 64 / 16 / 8 x 4      3.6          2.7          5.0
//   128 x 64 / 16 / 8 x 8      9.7          4.3          8.5
//   64 x 64 / 16 / 8 x 8       4.9 | 6.3    4.3 | 7.2    8.5 | 7.9
//   128 x 128 / 8 / 8 x 8      9.3 | 6.7    4.1 | 6.5    7.7 | 8.3
//   128 x 128 / 16 / 8 x 8     5.3 | 12.8   4.5 | 8.0    7.2 | 7.5
// 8 x 8 outputs per thread beat 4 x 4 by about 2x (lavapipe runs a workgroup's invocations as
// SIMD loops: fewer, fatter invocations cost less); among the 8 x 8 shapes the spread is within
// the noise of the shared machine. The glue takes 128 x 128 / 16 (256 threads, 16 KiB: the
// shape that also suits a real GPU) once M and N are both >= 128, 64 x 64 / 16 / 8 x 8 below
// (less padding on small or skinny problems, more workgroups).

//!include gemm_tile.wgsl

const TRANS_A: bool = false;
const TRANS_B: bool = false;
const VEC_A: bool = false;
const VEC_B: bool = false;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  lda: u32,
  ldb: u32,
  ldc: u32,
  alpha: f32,
  beta: f32,
  tiles_n: u32,  // blocks along N
  tiles: u32,    // blocks in all
  a_off: u32,    // element offsets of A[0,0], B[0,0], C[0,0] in their bindings (the glue binds
  b_off: u32,    // a view of a buffer too large to bind whole, src/backend/webgpu/ops/gemm.ts;
  c_off: u32,    // a multiple of 4 wherever the operand is read as vec4)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

fn a_at(i: u32) -> f32 {
  return a[i >> 2u][i & 3u];
}

fn b_at(i: u32) -> f32 {
  return b[i >> 2u][i & 3u];
}

fn load_a(tid: u32, m0: u32, k0: u32) {
  if (VEC_A && !TRANS_A) {
    // A is M x K: vec4 along k, scattered into four k rows of the panel.
    for (var e = tid; e < BM * BK / 4u; e += NT) {
      let m = e / (BK / 4u);
      let kk = 4u * (e % (BK / 4u));
      let gm = m0 + m;
      let gk = k0 + kk;
      var v = vec4f(0.0);
      if (gm < p.m && gk < p.k) { v = a[(p.a_off + gm * p.lda + gk) >> 2u]; }
      put_a(kk, m, v.x);
      put_a(kk + 1u, m, v.y);
      put_a(kk + 2u, m, v.z);
      put_a(kk + 3u, m, v.w);
    }
  } else if (VEC_A) {
    // A is K x M: vec4 along m, stored as is.
    for (var e = tid; e < BM * BK / 4u; e += NT) {
      let kk = e / BM4;
      let m = 4u * (e % BM4);
      let gm = m0 + m;
      let gk = k0 + kk;
      var v = vec4f(0.0);
      if (gm < p.m && gk < p.k) { v = a[(p.a_off + gk * p.lda + gm) >> 2u]; }
      tile_a[kk * BM4 + (m >> 2u)] = v;
    }
  } else if (!TRANS_A) {
    for (var e = tid; e < BM * BK; e += NT) {
      let m = e / BK;
      let kk = e % BK;
      let gm = m0 + m;
      let gk = k0 + kk;
      var v = 0.0;
      if (gm < p.m && gk < p.k) { v = a_at(p.a_off + gm * p.lda + gk); }
      put_a(kk, m, v);
    }
  } else {
    for (var e = tid; e < BM * BK; e += NT) {
      let kk = e / BM;
      let m = e % BM;
      let gm = m0 + m;
      let gk = k0 + kk;
      var v = 0.0;
      if (gm < p.m && gk < p.k) { v = a_at(p.a_off + gk * p.lda + gm); }
      put_a(kk, m, v);
    }
  }
}

fn load_b(tid: u32, n0: u32, k0: u32) {
  if (VEC_B && !TRANS_B) {
    // B is K x N: vec4 along n, stored as is.
    for (var e = tid; e < BN * BK / 4u; e += NT) {
      let kk = e / BN4;
      let n = 4u * (e % BN4);
      let gn = n0 + n;
      let gk = k0 + kk;
      var v = vec4f(0.0);
      if (gn < p.n && gk < p.k) { v = b[(p.b_off + gk * p.ldb + gn) >> 2u]; }
      tile_b[kk * BN4 + (n >> 2u)] = v;
    }
  } else if (VEC_B) {
    // B is N x K: vec4 along k, scattered into four k rows of the panel.
    for (var e = tid; e < BN * BK / 4u; e += NT) {
      let n = e / (BK / 4u);
      let kk = 4u * (e % (BK / 4u));
      let gn = n0 + n;
      let gk = k0 + kk;
      var v = vec4f(0.0);
      if (gn < p.n && gk < p.k) { v = b[(p.b_off + gn * p.ldb + gk) >> 2u]; }
      put_b(kk, n, v.x);
      put_b(kk + 1u, n, v.y);
      put_b(kk + 2u, n, v.z);
      put_b(kk + 3u, n, v.w);
    }
  } else if (!TRANS_B) {
    for (var e = tid; e < BN * BK; e += NT) {
      let kk = e / BN;
      let n = e % BN;
      let gn = n0 + n;
      let gk = k0 + kk;
      var v = 0.0;
      if (gn < p.n && gk < p.k) { v = b_at(p.b_off + gk * p.ldb + gn); }
      put_b(kk, n, v);
    }
  } else {
    for (var e = tid; e < BN * BK; e += NT) {
      let n = e / BK;
      let kk = e % BK;
      let gn = n0 + n;
      let gk = k0 + kk;
      var v = 0.0;
      if (gn < p.n && gk < p.k) { v = b_at(p.b_off + gn * p.ldb + gk); }
      put_b(kk, n, v);
    }
  }
}

@compute @workgroup_size(NT)
fn gemm(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u,
        @builtin(num_workgroups) nwg: vec3u) {
  // Every thread of a workgroup takes the same branch: the barriers below stay uniform.
  let block = wid.x + wid.y * nwg.x;
  if (block >= p.tiles) { return; }
  let m0 = (block / p.tiles_n) * BM;
  let n0 = (block % p.tiles_n) * BN;
  tile_clear();
  for (var k0 = 0u; k0 < p.k; k0 += BK) {
    load_a(tid, m0, k0);
    load_b(tid, n0, k0);
    workgroupBarrier();
    tile_fma(tid);
    workgroupBarrier();
  }
  for (var i = 0u; i < TM; i++) {
    let gm = m0 + out_row(tid, i);
    if (gm >= p.m) { break; }
    for (var j = 0u; j < TN4; j++) {
      let v = acc[i * TN4 + j];
      for (var cc = 0u; cc < 4u; cc++) {
        let gn = n0 + out_col(tid, j, cc);
        if (gn < p.n) {
          let o = p.c_off + gm * p.ldc + gn;
          let ab = p.alpha * v[cc];
          c[o] = select(ab + p.beta * c[o], ab, p.beta == 0.0);
        }
      }
    }
  }
}
