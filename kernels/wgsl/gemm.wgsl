// gemm.wgsl: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, the contract of gemm_f32 in
// kernels/cpu/kernels.h. Row-major with row strides lda, ldb, ldc; A is stored K x M when
// TRANS_A, B is stored N x K when TRANS_B. beta == 0 ignores C's old contents (NaN does not
// leak); columns of C between N and ldc are never written. A, B and C start at element
// a_off, b_off, c_off of their bindings (0 unless the glue splits a problem whose buffers are
// too large to bind whole into views, src/backend/webgpu/ops/gemm.ts).
//
// Mapping: one workgroup per BM x BN block of C, NT = (BM/TM) * (BN/TN) threads, each owning a
// TM x TN register tile. Blocks are numbered linearly, n fastest, from the workgroup id folded
// over x/y (runtime.ts grid()), so any M*N fits the dispatch limits. Thread t has ty = t / TX,
// tx = t % TX (TX = BN/TN): rows ty*TM .. ty*TM+TM-1 (contiguous) and the columns
// 4*(tx + j*TX) + c for j < TN/4, c < 4, i.e. vec4 column groups strided by TX. So the threads of
// a warp read consecutive vec4 of the B panel (no bank conflicts), the A panel as broadcasts,
// and write consecutive vec4 of C.
//
// Panels. The reduction runs BK at a time through workgroup memory:
//   tile_a[s][kk][m/4] = op(A)[m0 + m, k0 + kk]   (k-major: a thread's TM rows are TM/4 vec4 reads)
//   tile_b[s][kk][n/4] = op(B)[k0 + kk, n0 + n]
// Each thread loads its share of a panel as vec4 groups: 4 elements along the stored operand's
// contiguous dimension (k for A and transposed B, m for transposed A, n for B), one vec4 load
// when VEC_A / VEC_B (row stride and contiguous size multiples of 4, so a group is wholly
// inside or wholly outside the matrix), else four guarded scalar loads of the same elements.
// Groups along k are scattered into four panel rows; groups along m/n are stored as one vec4.
// The panel loop (PIPELINE):
//   0  load -> barrier -> compute -> barrier (the plain tiled kernel);
//   1  register prefetch: the loads of panel t+1 are issued into registers before the compute
//      on panel t, stored after it between two barriers (global latency hidden by the FMAs);
//   2  register prefetch and two panels (ping-pong): the compute reads panel t % 2 while the
//      prefetched values go to the other one; one barrier per panel.
// The inner product reads TM/4 + TN/4 groups of four floats of workgroup memory per kk and
// does TM*TN fma.
// Every private array (accumulators, fragments, prefetch registers) is indexed only by
// counters of loops with constant bounds, and workgroup panels are 3-D arrays whose dynamic
// part of the index (ty, tx) does not change with kk: once the driver unrolls the loops they
// are registers and constant offsets (a dynamically indexed private array would go to local
// memory, and a bounds clamp that Tint's robustness transform adds where it cannot prove an
// index in range stays out of the kk loop; in the SPIR-V Dawn emits for lavapipe the inner
// loop has none, dumped with IMAGERATE_WEBGPU_DAWN=enable-dawn-features=dump_shaders).
//
// Output: alpha * acc (+ beta * C) per element. C and the panels are arrays of f32, written
// one float per store. They were arrays of vec4 with component stores, which WGSL allows to
// access the whole vector: the threads that write neighbouring elements of one group of four
// (a panel's scattered k-groups, two blocks' columns when ldc is not a multiple of 4) would
// race on a driver that stores vectors whole (Metal may; Vulkan drivers store the component,
// so lavapipe could not show it). VEC_C (ldc, N and c_off multiples of 4) only drops the
// per-column bounds checks of a group.
//
// Variants: the glue's named defines sets (GEMM_VARIANTS in ops/gemm.ts, named
// BMxBN_kBK_tTMxTN_pPIPELINE); `imagerate bench gemm --backend webgpu --variants all` times
// each one, after checking it against a float64 reference on sampled elements. Constraints:
// TM, TN in {4, 8}; BM % TM == 0, BN % TN == 0, BK % 4 == 0; workgroup memory
// PANELS * 4 * BK * (BM + BN) bytes within maxComputeWorkgroupStorageSize.
//
// Measurements. lavapipe (llvmpipe, Mesa 25) is for correctness, and its figures do not rank
// designs for a GPU: it runs a workgroup's invocations as SIMD loops on a CPU, so fewer, fatter
// invocations win, while barriers and latency hiding, what the pipelines are for, cost it
// nothing. The sweep there (`imagerate bench gemm --backend webgpu --sizes 512,1024 --variants
// all`; 2 cores shared with other work, load average 2-4, most figures flagged noisy; GFLOP/s
// of the median time, 3 interleaved rounds; two runs a few minutes apart, first | second):
//   variant                 512^3       1024^3
//   128x128_k8_t8x8_p2      3.7 | 3.7   6.6 | 3.5
//   128x128_k16_t8x8_p2     3.4 | 3.8   4.4 | 3.6
//   128x128_k8_t8x8_p1      4.1 | 3.7   4.3 | 3.5
//   128x128_k16_t8x8_p1     4.4 | 3.8   6.4 | 3.7
//   128x128_k32_t8x8_p1     4.7 | 3.8   6.4 | 3.5
//   128x128_k16_t8x8_p0     3.9 | 3.9   6.7 | 3.7
//   128x64_k16_t8x8_p2      3.2 | 3.2   5.9 | 3.0
//   128x64_k16_t8x4_p2      2.8 | 2.4   4.4 | 2.3
//   64x64_k16_t8x8_p2       2.8 | 3.1   5.6 | 2.7
//   64x64_k16_t8x4_p2       2.4 | 2.2   3.9 | 2.1
//   64x64_k16_t4x4_p2       1.4 | 2.1   3.6 | 2.0
// i.e. the 8 x 8 shapes within the noise of each other and of the earlier single-panel kernel
// (its 128x128/16 measured minutes before the first run, median of 5: 5.7 at 512^3, 2.9 at
// 1024^3), fewer outputs per thread slower. The defaults (ops/gemm.ts) are therefore the design
// expected to be fastest on an NVIDIA GPU, the classic SIMT SGEMM: 128 x 128 block, BK 8, 8 x 8
// per thread (256 threads), register prefetch with ping-pong panels (16 KiB, within WebGPU's
// default limit); 64 x 64 / BK 16 / 8 x 8 below 128 rows or columns. The sweep on the H100 (scripts/gpu/run-gpu.sh webgpu) settles it;
// docs/webgpu.md says how to run models with its winner.

const BM: u32 = 128u;
const BN: u32 = 128u;
const BK: u32 = 8u;
const TM: u32 = 8u;
const TN: u32 = 8u;
const PIPELINE: u32 = 2u;
const TRANS_A: bool = false;
const TRANS_B: bool = false;
const VEC_A: bool = false;
const VEC_B: bool = false;
const VEC_C: bool = false;

const TX: u32 = BN / TN;                  // threads along n
const NT: u32 = (BM / TM) * TX;           // threads per workgroup
const TM4: u32 = TM / 4u;
const TN4: u32 = TN / 4u;
const BM4: u32 = BM / 4u;
const BN4: u32 = BN / 4u;
const BK4: u32 = BK / 4u;
const PANELS: u32 = select(1u, 2u, PIPELINE == 2u);
const GA: u32 = BM * BK4;                 // vec4 groups in an A panel, B panel
const GB: u32 = BN * BK4;
const LA: u32 = (GA + NT - 1u) / NT;      // groups per thread
const LB: u32 = (GB + NT - 1u) / NT;

const_assert TM % 4u == 0u && TN % 4u == 0u && BK % 4u == 0u;
const_assert BM % TM == 0u && BN % TN == 0u;
const_assert PIPELINE <= 2u;

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
  c_off: u32,    // a multiple of 4 wherever the operand is read or written as vec4)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// Scalar panels: different invocations write different elements of one group of four (the
// scattered k-groups below), and WGSL lets a store to one component of a vector access the
// whole vector, so vec4 panels would race on drivers that store vectors whole. The compute
// loop reads four consecutive floats, 16-byte aligned, which compilers may load as one.
var<workgroup> tile_a: array<array<array<f32, BM>, BK>, PANELS>;
var<workgroup> tile_b: array<array<array<f32, BN>, BK>, PANELS>;

fn panel_a(s: u32, kk: u32, m4: u32) -> vec4f {
  let m = 4u * m4;
  return vec4f(tile_a[s][kk][m], tile_a[s][kk][m + 1u], tile_a[s][kk][m + 2u], tile_a[s][kk][m + 3u]);
}

fn panel_b(s: u32, kk: u32, n4: u32) -> vec4f {
  let n = 4u * n4;
  return vec4f(tile_b[s][kk][n], tile_b[s][kk][n + 1u], tile_b[s][kk][n + 2u], tile_b[s][kk][n + 3u]);
}

fn put4(s: u32, kk: u32, first: u32, v: vec4f, is_a: bool) {
  if (is_a) {
    tile_a[s][kk][first] = v.x;
    tile_a[s][kk][first + 1u] = v.y;
    tile_a[s][kk][first + 2u] = v.z;
    tile_a[s][kk][first + 3u] = v.w;
  } else {
    tile_b[s][kk][first] = v.x;
    tile_b[s][kk][first + 1u] = v.y;
    tile_b[s][kk][first + 2u] = v.z;
    tile_b[s][kk][first + 3u] = v.w;
  }
}

fn a_elem(i: u32, inside: bool) -> f32 {
  if (inside) { return a[i >> 2u][i & 3u]; }
  return 0.0;
}

fn b_elem(i: u32, inside: bool) -> f32 {
  if (inside) { return b[i >> 2u][i & 3u]; }
  return 0.0;
}

// Group g of an A panel: (m, kk) of its first element. Its four elements run along k (A stored
// M x K) or along m (TRANS_A: stored K x M); consecutive g are consecutive in memory.
fn a_group(g: u32) -> vec2u {
  if (TRANS_A) { return vec2u(4u * (g % BM4), g / BM4); }
  return vec2u(g / BK4, 4u * (g % BK4));
}

// Group g of a B panel: (n, kk) of its first element, along n (B stored K x N) or along k
// (TRANS_B: stored N x K).
fn b_group(g: u32) -> vec2u {
  if (TRANS_B) { return vec2u(g / BK4, 4u * (g % BK4)); }
  return vec2u(4u * (g % BN4), g / BN4);
}

// The four elements of group g of the A panel at k0, zero outside op(A).
fn fetch_a(g: u32, m0: u32, k0: u32) -> vec4f {
  let q = a_group(g);
  let gm = m0 + q.x;
  let gk = k0 + q.y;
  if (TRANS_A) {
    if (gk >= p.k) { return vec4f(0.0); }
    let o = p.a_off + gk * p.lda + gm;
    if (VEC_A) {
      if (gm < p.m) { return a[o >> 2u]; }
      return vec4f(0.0);
    }
    return vec4f(a_elem(o, gm < p.m), a_elem(o + 1u, gm + 1u < p.m), a_elem(o + 2u, gm + 2u < p.m),
                 a_elem(o + 3u, gm + 3u < p.m));
  }
  if (gm >= p.m) { return vec4f(0.0); }
  let o = p.a_off + gm * p.lda + gk;
  if (VEC_A) {
    if (gk < p.k) { return a[o >> 2u]; }
    return vec4f(0.0);
  }
  return vec4f(a_elem(o, gk < p.k), a_elem(o + 1u, gk + 1u < p.k), a_elem(o + 2u, gk + 2u < p.k),
               a_elem(o + 3u, gk + 3u < p.k));
}

fn fetch_b(g: u32, n0: u32, k0: u32) -> vec4f {
  let q = b_group(g);
  let gn = n0 + q.x;
  let gk = k0 + q.y;
  if (TRANS_B) {
    if (gn >= p.n) { return vec4f(0.0); }
    let o = p.b_off + gn * p.ldb + gk;
    if (VEC_B) {
      if (gk < p.k) { return b[o >> 2u]; }
      return vec4f(0.0);
    }
    return vec4f(b_elem(o, gk < p.k), b_elem(o + 1u, gk + 1u < p.k), b_elem(o + 2u, gk + 2u < p.k),
                 b_elem(o + 3u, gk + 3u < p.k));
  }
  if (gk >= p.k) { return vec4f(0.0); }
  let o = p.b_off + gk * p.ldb + gn;
  if (VEC_B) {
    if (gn < p.n) { return b[o >> 2u]; }
    return vec4f(0.0);
  }
  return vec4f(b_elem(o, gn < p.n), b_elem(o + 1u, gn + 1u < p.n), b_elem(o + 2u, gn + 2u < p.n),
               b_elem(o + 3u, gn + 3u < p.n));
}

// Stores group g into panel s: four consecutive floats along m/n, or one float in each of four
// kk rows.
fn stash_a(s: u32, g: u32, v: vec4f) {
  let q = a_group(g);
  if (TRANS_A) {
    put4(s, q.y, q.x, v, true);
  } else {
    tile_a[s][q.y][q.x] = v.x;
    tile_a[s][q.y + 1u][q.x] = v.y;
    tile_a[s][q.y + 2u][q.x] = v.z;
    tile_a[s][q.y + 3u][q.x] = v.w;
  }
}

fn stash_b(s: u32, g: u32, v: vec4f) {
  let q = b_group(g);
  if (TRANS_B) {
    tile_b[s][q.y][q.x] = v.x;
    tile_b[s][q.y + 1u][q.x] = v.y;
    tile_b[s][q.y + 2u][q.x] = v.z;
    tile_b[s][q.y + 3u][q.x] = v.w;
  } else {
    put4(s, q.y, q.x, v, false);
  }
}

// C[o] = v (+ beta * C[o]): one float, so a neighbouring invocation or workgroup owning the
// next column never shares a store with this one.
fn store_c1(o: u32, v: f32) {
  if (p.beta == 0.0) {
    c[o] = v;
  } else {
    c[o] = v + p.beta * c[o];
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
  let ty = tid / TX;
  let tx = tid % TX;
  let steps = (p.k + BK - 1u) / BK;

  var acc: array<array<vec4f, TN4>, TM>;
  var ra: array<vec4f, LA>;
  var rb: array<vec4f, LB>;

  if (PIPELINE != 0u) {
    if (steps > 0u) {
      for (var i = 0u; i < LA; i++) {
        let g = tid + i * NT;
        if (GA % NT == 0u || g < GA) { stash_a(0u, g, fetch_a(g, m0, 0u)); }
      }
      for (var i = 0u; i < LB; i++) {
        let g = tid + i * NT;
        if (GB % NT == 0u || g < GB) { stash_b(0u, g, fetch_b(g, n0, 0u)); }
      }
    }
    workgroupBarrier();
  }

  for (var t = 0u; t < steps; t++) {
    let s = t % PANELS;
    let more = t + 1u < steps;
    if (PIPELINE == 0u) {
      for (var i = 0u; i < LA; i++) {
        let g = tid + i * NT;
        if (GA % NT == 0u || g < GA) { stash_a(0u, g, fetch_a(g, m0, t * BK)); }
      }
      for (var i = 0u; i < LB; i++) {
        let g = tid + i * NT;
        if (GB % NT == 0u || g < GB) { stash_b(0u, g, fetch_b(g, n0, t * BK)); }
      }
      workgroupBarrier();
    } else if (more) {
      // Issued now, consumed after the inner product: their latency overlaps the FMAs.
      for (var i = 0u; i < LA; i++) {
        let g = tid + i * NT;
        if (GA % NT == 0u || g < GA) { ra[i] = fetch_a(g, m0, (t + 1u) * BK); }
      }
      for (var i = 0u; i < LB; i++) {
        let g = tid + i * NT;
        if (GB % NT == 0u || g < GB) { rb[i] = fetch_b(g, n0, (t + 1u) * BK); }
      }
    }

    for (var kk = 0u; kk < BK; kk++) {
      var fa: array<vec4f, TM4>;
      var fb: array<vec4f, TN4>;
      for (var i = 0u; i < TM4; i++) { fa[i] = panel_a(s, kk, ty * TM4 + i); }
      for (var j = 0u; j < TN4; j++) { fb[j] = panel_b(s, kk, tx + j * TX); }
      for (var i = 0u; i < TM4; i++) {
        let av = fa[i];
        for (var j = 0u; j < TN4; j++) {
          acc[4u * i][j] = fma(vec4f(av.x), fb[j], acc[4u * i][j]);
          acc[4u * i + 1u][j] = fma(vec4f(av.y), fb[j], acc[4u * i + 1u][j]);
          acc[4u * i + 2u][j] = fma(vec4f(av.z), fb[j], acc[4u * i + 2u][j]);
          acc[4u * i + 3u][j] = fma(vec4f(av.w), fb[j], acc[4u * i + 3u][j]);
        }
      }
    }

    if (PIPELINE == 0u) {
      workgroupBarrier();
    } else {
      // One panel: everyone must be done reading it before it is overwritten. Two panels: the
      // other one was last read in step t - 1, before the previous barrier.
      if (PANELS == 1u) { workgroupBarrier(); }
      if (more) {
        let d = (t + 1u) % PANELS;
        for (var i = 0u; i < LA; i++) {
          let g = tid + i * NT;
          if (GA % NT == 0u || g < GA) { stash_a(d, g, ra[i]); }
        }
        for (var i = 0u; i < LB; i++) {
          let g = tid + i * NT;
          if (GB % NT == 0u || g < GB) { stash_b(d, g, rb[i]); }
        }
      }
      workgroupBarrier();
    }
  }

  for (var i = 0u; i < TM; i++) {
    let gm = m0 + ty * TM + i;
    for (var j = 0u; j < TN4; j++) {
      let gn = n0 + 4u * (tx + j * TX);
      let v = p.alpha * acc[i][j];
      let o = p.c_off + gm * p.ldc + gn;
      if (gm < p.m && gn < p.n) {
        if (VEC_C) {  // the whole group is inside C
          store_c1(o, v.x);
          store_c1(o + 1u, v.y);
          store_c1(o + 2u, v.z);
          store_c1(o + 3u, v.w);
        } else {
          store_c1(o, v.x);
          if (gn + 1u < p.n) { store_c1(o + 1u, v.y); }
          if (gn + 2u < p.n) { store_c1(o + 2u, v.z); }
          if (gn + 3u < p.n) { store_c1(o + 3u, v.w); }
        }
      }
    }
  }
}
