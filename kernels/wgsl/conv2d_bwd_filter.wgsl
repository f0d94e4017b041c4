// conv2d_bwd_filter.wgsl: dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] * x[n,c,p*sh-ph+r*dh, q*sw-pw+s*dw]
// and db[k] = sum_{n,p,q} dy[n,k,p,q] (conv2d_bwd_filter in kernels/cpu/kernels.h); both are
// overwritten.
//
// conv2d_bwd_filter_gemm: implicit GEMM on the block tile of gemm_tile.wgsl, with
//   M = K, N = C*R*S, reduction N*P*Q (long: 50176 for LeNet conv1 at batch 64);
//   A[k][npq] = dy[n, k, p, q], B[npq][crs] = x gathered at the tap (0 in padding).
// Both panels are loaded with the reduction index fastest, so neighbouring threads read
// neighbouring q of dy and (stride 1) of x. The output is small (K x CRS, often one or two
// blocks), so the reduction is split (split-K): workgroup z sums reduction indices
// [z*k_chunk, (z+1)*k_chunk) and writes its partial block to part[z][k][crs]; with one split
// part is dw itself. conv2d_splitk_sum then adds the partials in a fixed order (deterministic).
//
// The split count aims at 128 workgroups in all (enough to fill a GPU) with at least 512
// reduction indices per split (src/backend/webgpu/ops/conv.ts). The block follows M = K: an
// 8 x 32 block (16 threads) up to 8 output channels, then as the other implicit GEMMs; the
// lavapipe timings behind it are in conv2d_fwd.wgsl's header.
//
// conv2d_bias_grad: db[k] = sum over (n, p, q) of dy, one workgroup of WG_RED threads per k:
// strided partial sums, then a tree in workgroup memory (fixed order, deterministic).

//!include gemm_tile.wgsl
//!include conv2d_common.wgsl

const WG_RED: u32 = 256u;

struct SumParams {
  count: u32,   // elements of dw
  splits: u32,
}

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

@compute @workgroup_size(NT)
fn conv2d_bwd_filter_gemm(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u,
                          @builtin(num_workgroups) nwg: vec3u) {
  let o = block_origin(wid, nwg);
  if (o.x < 0) { return; }
  let m0 = u32(o.x);
  let n0 = u32(o.y);
  let pq_n = p.p * p.q;
  let rs_n = p.r * p.s;
  let k_begin = wid.z * p.k_chunk;
  let k_end = min(k_begin + p.k_chunk, p.gk);
  tile_clear();
  for (var k0 = k_begin; k0 < k_end; k0 += BK) {
    for (var e = tid; e < BM * BK; e += NT) {
      let k = m0 + e / BK;
      let npq = k0 + e % BK;
      var v = 0.0;
      if (k < p.gm && npq < k_end) { v = dy[((npq / pq_n) * p.k + k) * pq_n + npq % pq_n]; }
      put_a(e % BK, e / BK, v);
    }
    for (var e = tid; e < BN * BK; e += NT) {
      let crs = n0 + e / BK;
      let npq = k0 + e % BK;
      var v = 0.0;
      if (crs < p.gn && npq < k_end) {
        let pq = npq % pq_n;
        let rs = crs % rs_n;
        let ih = i32((pq / p.q) * p.sh + (rs / p.s) * p.dh) - i32(p.ph);
        let iw = i32((pq % p.q) * p.sw + (rs % p.s) * p.dw) - i32(p.pw);
        if (ih >= 0 && ih < i32(p.h) && iw >= 0 && iw < i32(p.w)) {
          v = x[(((npq / pq_n) * p.c + crs / rs_n) * p.h + u32(ih)) * p.w + u32(iw)];
        }
      }
      put_b(e % BK, e / BK, v);
    }
    workgroupBarrier();
    tile_fma(tid);
    workgroupBarrier();
  }
  let obase = wid.z * p.gm * p.gn;
  for (var i = 0u; i < TM; i++) {
    let k = m0 + out_row(tid, i);
    if (k >= p.gm) { break; }
    for (var j = 0u; j < TN4; j++) {
      let v = acc[i * TN4 + j];
      for (var cc = 0u; cc < 4u; cc++) {
        let crs = n0 + out_col(tid, j, cc);
        if (crs < p.gn) {
          part[obase + k * p.gn + crs] = v[cc];
        }
      }
    }
  }
}

@group(0) @binding(0) var<uniform> sp: SumParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;

@compute @workgroup_size(WG_RED)
fn conv2d_splitk_sum(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_RED;
  if (i >= sp.count) { return; }
  var s = 0.0;
  for (var z = 0u; z < sp.splits; z++) {
    s += partials[z * sp.count + i];
  }
  dw[i] = s;
}

@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;

var<workgroup> red: array<f32, WG_RED>;

// One workgroup per output channel k = workgroup_id.x.
@compute @workgroup_size(WG_RED)
fn conv2d_bias_grad(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  let k = wid.x;
  let pq_n = p.p * p.q;
  let total = p.n * pq_n;
  var s = 0.0;
  for (var i = tid; i < total; i += WG_RED) {
    s += grad[((i / pq_n) * p.k + k) * pq_n + i % pq_n];
  }
  red[tid] = s;
  workgroupBarrier();
  for (var half = WG_RED / 2u; half > 0u; half >>= 1u) {
    if (tid < half) { red[tid] += red[tid + half]; }
    workgroupBarrier();
  }
  if (tid == 0u) { db[k] = red[0]; }
}
