// conv2d_bwd_data.wgsl: dx[n,c,h,w] = sum_{k,r,s} dy[n,k,p,q] * w[k,c,r,s] over the taps with
// h = p*sh - ph + r*dh and w = q*sw - pw + s*dw (the transpose of the forward convolution,
// conv2d_bwd_data in kernels/cpu/kernels.h). dx is overwritten.
//
// conv2d_bwd_data_gemm: implicit GEMM on the block tile of gemm_tile.wgsl, with
//   M = C (input channels), N = N*H*W (input pixels), reduction K*R*S;
//   A[c][krs] = w[k, c, r, s],
//   B[krs][nhw] = dy[n, k, p, q] where p = (h + ph - r*dh) / sh and q likewise divide exactly
//   and land inside the output, else 0.
// As in the forward kernel each thread loads one fixed pixel column of the B panel, decoded
// once per block. With stride 2 three quarters of B are structural zeros; a stride-aware
// decomposition (one GEMM per phase) would skip them, but strided layers are a small share of
// the networks here and this keeps one kernel for every shape.
//
// conv2d_bwd_data_direct: one thread per input pixel and CB input channels (the transpose of
// conv2d_fwd_direct), for layers with few input channels, where the GEMM's M = C leaves most of
// a block empty (LeNet conv1 has C = 1).
//
// Choice by measurement on lavapipe: see src/backend/webgpu/ops/conv.ts (convBwdDataAlgo) and
// the table in conv2d_fwd.wgsl's header.

//!include gemm_tile.wgsl
//!include conv2d_common.wgsl

const CB: u32 = 4u;
// Set by the glue when both strides are 1: the gather then needs no division by the stride.
const UNIT_STRIDE: bool = false;
const WG_DIRECT: u32 = 64u;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const_assert NT % BN == 0u;

@compute @workgroup_size(NT)
fn conv2d_bwd_data_gemm(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u,
                        @builtin(num_workgroups) nwg: vec3u) {
  let o = block_origin(wid, nwg);
  if (o.x < 0) { return; }
  let m0 = u32(o.x);
  let n0 = u32(o.y);
  let hw_n = p.h * p.w;
  let rs_n = p.r * p.s;
  let pq_n = p.p * p.q;
  // This thread's column of the B panel: one input pixel.
  let nn = tid % BN;
  let col = n0 + nn;
  let col_ok = col < p.gn;
  let img = col / hw_n;
  let hw = col % hw_n;
  let th = i32(hw / p.w) + i32(p.ph);
  let tw = i32(hw % p.w) + i32(p.pw);
  let dybase = img * p.k * pq_n;
  tile_clear();
  for (var k0 = 0u; k0 < p.gk; k0 += BK) {
    // A[c][krs] = w[(k*C + c)*RS + rs]: consecutive threads take consecutive rs.
    for (var e = tid; e < BM * BK; e += NT) {
      let c = m0 + e / BK;
      let krs = k0 + e % BK;
      var v = 0.0;
      if (c < p.gm && krs < p.gk) { v = wt[((krs / rs_n) * p.c + c) * rs_n + krs % rs_n]; }
      put_a(e % BK, e / BK, v);
    }
    for (var kk = tid / BN; kk < BK; kk += NT / BN) {
      let krs = k0 + kk;
      let k = krs / rs_n;
      let rs = krs % rs_n;
      let yh = th - i32((rs / p.s) * p.dh);
      let yw = tw - i32((rs % p.s) * p.dw);
      var v = 0.0;
      if (col_ok && krs < p.gk && yh >= 0 && yw >= 0) {
        var oh = u32(yh);
        var ow = u32(yw);
        var hit = true;
        if (!UNIT_STRIDE) {
          oh = oh / p.sh;
          ow = ow / p.sw;
          hit = oh * p.sh == u32(yh) && ow * p.sw == u32(yw);
        }
        if (hit && oh < p.p && ow < p.q) {
          v = dy[dybase + (k * p.p + oh) * p.q + ow];
        }
      }
      put_b(kk, nn, v);
    }
    workgroupBarrier();
    tile_fma(tid);
    workgroupBarrier();
  }
  for (var i = 0u; i < TM; i++) {
    let c = m0 + out_row(tid, i);
    if (c >= p.gm) { break; }
    for (var j = 0u; j < TN4; j++) {
      let v = acc[i * TN4 + j];
      for (var cc = 0u; cc < 4u; cc++) {
        let gn = n0 + out_col(tid, j, cc);
        if (gn < p.gn) {
          dx[((gn / hw_n) * p.c + c) * hw_n + gn % hw_n] = v[cc];
        }
      }
    }
  }
}

// One thread per input pixel and CB input channels. The taps (r, s) are the outer loops, so
// the stride test (a division) runs once per tap, not once per (k, r, s); k is innermost.
@compute @workgroup_size(WG_DIRECT)
fn conv2d_bwd_data_direct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_DIRECT;
  let hw_n = p.h * p.w;
  let groups = (p.c + CB - 1u) / CB;
  let hw = i % hw_n;
  let cg = (i / hw_n) % groups;
  let img = i / (hw_n * groups);
  if (img >= p.n) { return; }
  let th = i32(hw / p.w) + i32(p.ph);
  let tw = i32(hw % p.w) + i32(p.pw);
  let rs_n = p.r * p.s;
  let pq_n = p.p * p.q;
  let crs_n = p.c * rs_n;
  var sum: array<f32, CB>;
  for (var r = 0u; r < p.r; r++) {
    let yh = th - i32(r * p.dh);
    if (yh < 0) { break; }
    let oh = u32(yh) / p.sh;
    if (oh * p.sh != u32(yh) || oh >= p.p) { continue; }
    for (var s = 0u; s < p.s; s++) {
      let yw = tw - i32(s * p.dw);
      if (yw < 0) { break; }
      let ow = u32(yw) / p.sw;
      if (ow * p.sw != u32(yw) || ow >= p.q) { continue; }
      var gi = img * p.k * pq_n + oh * p.q + ow;
      var wi = r * p.s + s;
      for (var k = 0u; k < p.k; k++) {
        let g = dy[gi];
        for (var j = 0u; j < CB; j++) {
          let c = min(cg * CB + j, p.c - 1u);
          sum[j] = fma(g, wt[wi + c * rs_n], sum[j]);
        }
        gi += pq_n;
        wi += crs_n;
      }
    }
  }
  for (var j = 0u; j < CB; j++) {
    let c = cg * CB + j;
    if (c < p.c) {
      dx[(img * p.c + c) * hw_n + hw] = sum[j];
    }
  }
}
