// gemm_tile.wgsl: the block tile of the implicit-GEMM convolutions (conv2d_fwd.wgsl,
// conv2d_bwd_data.wgsl, conv2d_bwd_filter.wgsl include it with `//!include gemm_tile.wgsl`). It
// is not a kernel on its own: it holds the tile shape, the two workgroup-memory panels, the
// per-thread accumulators and the inner product over one panel. The plain GEMM (gemm.wgsl) has
// its own loop with the same thread mapping, plus register prefetch, ping-pong panels and vec4
// stores (gemm.wgsl's header); the convolutions' gathers keep this simpler one-panel form.
//
// One workgroup computes a BM x BN block of C over a reduction range, BK at a time:
//   tile_a[kk][m] = op(A)[m0 + m, k0 + kk]   (BK x BM, k-major so a thread's TM rows are one read)
//   tile_b[kk][n] = op(B)[k0 + kk, n0 + n]   (BK x BN)
// Each kernel fills the panels with its own loader (plain or transposed GEMM operands, or the
// implicit-GEMM gathers of convolution), zero outside the problem, then calls tile_fma().
//
// Thread mapping: NT = (BM/TM) * (BN/TN) threads; thread t has ty = t / TX, tx = t % TX with
// TX = BN / TN. It owns the TM rows ty*TM .. ty*TM+TM-1 (contiguous) and the TN columns
// 4*(tx + j*TX) + c for j < TN/4, c < 4: its columns come in vec4 groups strided by TX, so the
// threads of a warp read consecutive vec4 of tile_b (no bank conflicts) and write consecutive
// columns of C. acc[i * TN4 + j] holds row i, column group j.
//
// The defaults are the 128 x 128 block, BK 16, 8 x 8 outputs per thread: 256 threads and
// 16 KiB of workgroup memory, the shape a real GPU wants; on lavapipe 8 x 8 per thread measured
// about 2x faster than 4 x 4 and the 8 x 8 block shapes were within noise of each other
// (conv2d_fwd.wgsl's header has the convolution timings). The glue picks other shapes by
// defines (src/backend/webgpu/ops/conv.ts): BM a multiple of TM, BN of TN; TM, TN multiples
// of 4; the two panels, 4 * BK * (BM + BN) bytes, within maxComputeWorkgroupStorageSize
// (32 KiB on lavapipe).

const BM: u32 = 128u;
const BN: u32 = 128u;
const BK: u32 = 16u;
const TM: u32 = 8u;
const TN: u32 = 8u;

const TX: u32 = BN / TN;
const NT: u32 = (BM / TM) * (BN / TN);
const TM4: u32 = TM / 4u;
const TN4: u32 = TN / 4u;
const BM4: u32 = BM / 4u;
const BN4: u32 = BN / 4u;

// Scalar panels: neighbouring invocations write neighbouring elements (put_a, put_b), and WGSL
// lets a store to one component of a vector access the whole vector, so vec4 panels would race
// on drivers that store vectors whole. tile_fma reads four consecutive floats, 16-byte aligned.
var<workgroup> tile_a: array<f32, BK * BM>;
var<workgroup> tile_b: array<f32, BK * BN>;
var<private> acc: array<vec4f, TM * TN4>;

fn put_a(kk: u32, m: u32, v: f32) {
  tile_a[kk * BM + m] = v;
}

fn put_b(kk: u32, n: u32, v: f32) {
  tile_b[kk * BN + n] = v;
}

fn tile_clear() {
  for (var i = 0u; i < TM * TN4; i++) {
    acc[i] = vec4f(0.0);
  }
}

// acc += tile_a^T * tile_b for this thread's TM x TN outputs.
fn tile_fma(tid: u32) {
  let ty = tid / TX;
  let tx = tid % TX;
  for (var kk = 0u; kk < BK; kk++) {
    var a: array<vec4f, TM4>;
    for (var i4 = 0u; i4 < TM4; i4++) {
      let o = kk * BM + 4u * (ty * TM4 + i4);
      a[i4] = vec4f(tile_a[o], tile_a[o + 1u], tile_a[o + 2u], tile_a[o + 3u]);
    }
    var b: array<vec4f, TN4>;
    for (var j = 0u; j < TN4; j++) {
      let o = kk * BN + 4u * (tx + j * TX);
      b[j] = vec4f(tile_b[o], tile_b[o + 1u], tile_b[o + 2u], tile_b[o + 3u]);
    }
    for (var i = 0u; i < TM; i++) {
      let ai = vec4f(a[i >> 2u][i & 3u]);
      for (var j = 0u; j < TN4; j++) {
        acc[i * TN4 + j] = fma(ai, b[j], acc[i * TN4 + j]);
      }
    }
  }
}

// Block-local row of accumulator row i, and column of accumulator group j, component c.
fn out_row(tid: u32, i: u32) -> u32 {
  return (tid / TX) * TM + i;
}

fn out_col(tid: u32, j: u32, c: u32) -> u32 {
  return 4u * (tid % TX + j * TX) + c;
}
