// conv2d_fwd.wgsl: y[n,k,p,q] = sum_{c,r,s} x[n,c,p*sh-ph+r*dh, q*sw-pw+s*dw] * w[k,c,r,s]
// (+ bias[k] when HAS_BIAS), the contract of conv2d_fwd in kernels/cpu/kernels.h. Two kernels:
//
// conv2d_fwd_gemm: implicit GEMM on the block tile of gemm_tile.wgsl, with
//   M = K (output channels), N = N*P*Q (output pixels), reduction C*R*S;
//   A[k][crs] = w[k, crs] (dense rows), B[crs][npq] = x gathered at the tap (0 in padding).
// Each thread of a block loads one fixed output pixel column of the B panel (NT is a multiple
// of BN), so the pixel's (n, p, q) is decoded once per block, not once per element; threads
// next to each other read neighbouring pixels (coalesced when stride is 1). The epilogue adds
// the bias and writes y[n,k,p,q] (neighbouring threads write neighbouring q).
//
// conv2d_fwd_direct: one thread per output pixel and KB output channels, looping over the taps
// (r, s) outside and the input channels inside (one bounds test per tap); each input value is
// read once and used KB times, weights are shared by the threads of a workgroup (same channel
// group, so the reads are uniform). No workgroup memory, no barriers.
//
// Choice, measured on lavapipe (llvmpipe, Mesa 25.0.7, 2 cores shared with other work, load
// average 5-6 during the run, so absolute times are ~2x inflated; the ordering held in three
// runs). `node scripts/wgsl/conv-algos.mjs` after `npx tsc`: device time by timestamp
// query, best of 3, ms. LeNet-5 conv1 (1->6, 5x5, 28x28 pad 2) and conv2 (6->16, 5x5, 14x14)
// at batch 64; ResNet-50 3x3 layers 64->64 on 56x56 and 256->256 on 14x14 at batch 2.
//                         lenet1   lenet2   r50 64@56   r50 256@14
//   fwd direct (best KB)    9.6     22.7      316         316
//   fwd gemm 16x64/4x4     51.8     26.7      591         617
//   fwd gemm 64x64/8x8     93.2     55.2      203         275
//   fwd gemm 128x128/8x8  142      99.2       362         211
//   bwd-data direct (CB)   30.9     36.8      395         341
//   bwd-data gemm 16x64   351     183         648         734
//   bwd-data gemm 64x64   499     242         286         302
//   bwd-data gemm 128x128 793     515         371         217
//   bwd-filter 8x32/4x4    52.1     73.6      870        1072
//   bwd-filter 16x64/4x4  111      60.8       775         807
//   bwd-filter 64x64/8x8  179      65.0       199         200
//   bwd-filter 128x128    575     143         398         208
// The implicit GEMM wastes most of its block when the GEMM's M (output channels here) is a few
// rows, and the direct kernel has no such padding: so the glue (src/backend/webgpu/ops/conv.ts)
// runs the direct forward for K <= 16 and the implicit GEMM above, with the 64 x 64 block up to
// 64 rows and 128 x 128 above. Backward-data follows the same rule on C (its direct kernel is in
// conv2d_bwd_data.wgsl); backward-filter is always the split-K implicit GEMM, with an 8 x 32
// block for up to 8 output channels.

//!include gemm_tile.wgsl
//!include conv2d_common.wgsl

const HAS_BIAS: bool = false;
const KB: u32 = 4u;
const WG_DIRECT: u32 = 64u;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
// When the op has no bias the glue binds the weights here; HAS_BIAS = false never reads it.
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const_assert NT % BN == 0u;

fn bias_of(k: u32) -> f32 {
  if (HAS_BIAS) { return bias[k]; }
  return 0.0;
}

@compute @workgroup_size(NT)
fn conv2d_fwd_gemm(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u,
                   @builtin(num_workgroups) nwg: vec3u) {
  let o = block_origin(wid, nwg);
  if (o.x < 0) { return; }
  let m0 = u32(o.x);
  let n0 = u32(o.y);
  let pq_n = p.p * p.q;
  let rs_n = p.r * p.s;
  // This thread's column of the B panel: one output pixel.
  let nn = tid % BN;
  let col = n0 + nn;
  let col_ok = col < p.gn;
  let img = col / pq_n;
  let pq = col % pq_n;
  let h0 = i32((pq / p.q) * p.sh) - i32(p.ph);
  let w0 = i32((pq % p.q) * p.sw) - i32(p.pw);
  let xbase = img * p.c * p.h * p.w;
  tile_clear();
  for (var k0 = 0u; k0 < p.gk; k0 += BK) {
    for (var e = tid; e < BM * BK; e += NT) {
      let gm = m0 + e / BK;
      let gk = k0 + e % BK;
      var v = 0.0;
      if (gm < p.gm && gk < p.gk) { v = wt[gm * p.gk + gk]; }
      put_a(e % BK, e / BK, v);
    }
    for (var kk = tid / BN; kk < BK; kk += NT / BN) {
      let crs = k0 + kk;
      let c = crs / rs_n;
      let rs = crs % rs_n;
      let ih = h0 + i32((rs / p.s) * p.dh);
      let iw = w0 + i32((rs % p.s) * p.dw);
      var v = 0.0;
      if (col_ok && crs < p.gk && ih >= 0 && ih < i32(p.h) && iw >= 0 && iw < i32(p.w)) {
        v = x[xbase + (c * p.h + u32(ih)) * p.w + u32(iw)];
      }
      put_b(kk, nn, v);
    }
    workgroupBarrier();
    tile_fma(tid);
    workgroupBarrier();
  }
  for (var i = 0u; i < TM; i++) {
    let k = m0 + out_row(tid, i);
    if (k >= p.gm) { break; }
    let bk = bias_of(k);
    for (var j = 0u; j < TN4; j++) {
      let v = acc[i * TN4 + j];
      for (var cc = 0u; cc < 4u; cc++) {
        let gn = n0 + out_col(tid, j, cc);
        if (gn < p.gn) {
          y[((gn / pq_n) * p.k + k) * pq_n + gn % pq_n] = v[cc] + bk;
        }
      }
    }
  }
}

@compute @workgroup_size(WG_DIRECT)
fn conv2d_fwd_direct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_DIRECT;
  let pq_n = p.p * p.q;
  let groups = (p.k + KB - 1u) / KB;
  let pq = i % pq_n;
  let kg = (i / pq_n) % groups;
  let img = i / (pq_n * groups);
  if (img >= p.n) { return; }
  let h0 = i32((pq / p.q) * p.sh) - i32(p.ph);
  let w0 = i32((pq % p.q) * p.sw) - i32(p.pw);
  let hw_n = p.h * p.w;
  let rs_n = p.r * p.s;
  let crs_n = p.c * rs_n;
  var sum: array<f32, KB>;
  // Taps outermost: the bounds test runs once per (r, s), the channel loop is innermost.
  for (var r = 0u; r < p.r; r++) {
    let ih = h0 + i32(r * p.dh);
    if (ih < 0 || ih >= i32(p.h)) { continue; }
    for (var s = 0u; s < p.s; s++) {
      let iw = w0 + i32(s * p.dw);
      if (iw < 0 || iw >= i32(p.w)) { continue; }
      var xi = img * p.c * hw_n + u32(ih) * p.w + u32(iw);
      var wi = r * p.s + s;
      for (var c = 0u; c < p.c; c++) {
        let xv = x[xi];
        for (var j = 0u; j < KB; j++) {
          let k = min(kg * KB + j, p.k - 1u);
          sum[j] = fma(xv, wt[k * crs_n + wi], sum[j]);
        }
        xi += hw_n;
        wi += rs_n;
      }
    }
  }
  for (var j = 0u; j < KB; j++) {
    let k = kg * KB + j;
    if (k < p.k) {
      y[(img * p.k + k) * pq_n + pq] = sum[j] + bias_of(k);
    }
  }
}
