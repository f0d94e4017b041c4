// kernels.cuh: the CUDA kernel entry points, host-callable. Plain C++ (only cudaStream_t and
// cudaError_t come from CUDA), so native/cuda_*.cc compile it with the host compiler.
//
// Change log (this header only grows; existing declarations keep their signatures):
//   v1  first version: every op of kernels/cpu/kernels.h, plus copy_f32, the fused
//       conv2d_fwd_bias_relu and batchnorm2d_*_relu, and gemm_kernel_name.
//   v2  GEMM tuning variants (gemm_variant*), the device-scalar ops that CUDA graphs replay
//       (dropout_fwd_device_seed, sgd_momentum_update_device_lr), and the Hopper wgmma main
//       loop (gemm_wgmma_supported, set_use_wgmma, use_wgmma); with it, TF32 GEMMs with both
//       operands k-contiguous (A as stored, B transposed) take their operands through the TMA
//       copy engine (gemm_kernel_name "gemm_tf32_wgmma_tma_128x128").
//
// Contract: each function mirrors the CPU function of the same name in kernels/cpu/kernels.h
// (same math, same argument order), with two differences:
//   * pointers are device pointers, and a trailing `cudaStream_t stream` says where to launch;
//   * GEMM and conv2d take a MathMode just before the stream.
// Functions launch and return without synchronising. They return cudaSuccess, or the error of
// the launch (cudaGetLastError() after it) or of a stream-ordered allocation. Errors of the
// kernel's execution surface at the caller's next synchronisation, as usual in CUDA.
// Shapes are validated by the caller (native/), as for the CPU kernels; sizes of 0 launch
// nothing and return cudaSuccess. Nothing here calls exit()/abort() or prints.
//
// Scratch memory: conv2d_bwd_filter (split-K partials), bias_grad, conv2d_bwd_filter's db,
// batchnorm2d_* (per-channel partial sums) and sumsq_check take a small stream-ordered
// workspace with cudaMallocAsync/cudaFreeAsync on `stream` (the device's default memory pool).
// Call keep_scratch_pool(device) once before the first kernel: it raises the pool's release
// threshold (0 by default, which hands the pool's memory back to the driver at every stream or
// event synchronisation, so every step would map its scratch again).
// Reductions are deterministic: partial sums are combined in a fixed order that depends on
// the shape only, so a given shape gives the same bits on every run (and on every GPU model).
//
// Differences from the CPU kernels that a caller can see:
//   * softmax_xent_fwd/bwd cannot throw for a label outside [0, C): that row gets NaN loss
//     (fwd; probs are still written) or NaN dlogits (bwd), and is counted in the caller's
//     fault slot (below, "Faults"), from which the addon raises the CPU kernel's error.
//   * MathMode::TF32/BF16/FP16 round GEMM/conv operands to that format (fp32 accumulate,
//     fp32 storage). On a GPU older than sm_80 they fall back to FP32 (see gemm_kernel_name).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace imagerate {
namespace cuda {

// Precision of the GEMM/conv multiply. Storage is always fp32; operands are rounded to the
// named format while they are staged into shared memory, products are accumulated in fp32.
//   FP32  SIMT fp32 FMA (exact fp32 products)
//   TF32  tensor cores, operands rounded to TF32 (10-bit mantissa, round to nearest, ties away)
//   BF16  tensor cores, operands rounded to bfloat16 (7-bit mantissa, round to nearest even)
//   FP16  tensor cores, operands rounded to IEEE half (10-bit mantissa, range +-65504)
enum class MathMode : int { FP32 = 0, TF32 = 1, BF16 = 2, FP16 = 3 };

// Keep the scratch pool's memory between synchronisations (see "Scratch memory" above):
// cudaMemPoolAttrReleaseThreshold of the device's default pool set to the maximum. Trim it
// with cudaMemPoolTrimTo when memory is short (the addon does, before retrying an allocation).
cudaError_t keep_scratch_pool(int device);  // device_probe.cu
const char* math_mode_name(MathMode m);  // "fp32" | "tf32" | "bf16" | "fp16"

// ---------------------------------------------------------------- GEMM (gemm.cu)
// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C. Row-major; lda/ldb/ldc are the row
// strides of A, B, C as stored (A is K x M when trans_a). beta == 0 ignores C's old contents
// (NaN in C does not leak through). K == 0 or alpha == 0 only scales C by beta (A, B unread).
cudaError_t gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc, MathMode mode, cudaStream_t stream);
// Name of the kernel gemm_f32 would launch for this problem on the current device, e.g.
// "gemm_f32_simt_128x128", "gemm_tf32_mma_128x128", "gemm_tf32_wgmma_128x128" (use_wgmma()),
// "gemm_tf32_wgmma_tma_128x128" (use_wgmma(), TF32, !trans_a && trans_b: the name assumes
// 16-byte aligned operands with lda, ldb multiples of 4, else the plain wgmma loop runs),
// "gemm_scale_c" (for benchmark labels).
const char* gemm_kernel_name(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                             float alpha, MathMode mode);
// GEMM tuning variants, for a GPU session to time against each other and cuBLAS
// (native/harness/bench.cc) before one replaces a default:
//   fp32 SIMT 128x128, k tile BK 8 or 16, with the register cap of __launch_bounds__ for 2
//     blocks per SM or none: "f32_simt_128x128_k8_b2" (what gemm_f32 runs in fp32 for problems
//     of about 132 tiles and more), "f32_simt_128x128_k8_b1", "f32_simt_128x128_k16_b1";
//   tensor cores (mma.sync), per 16/19-bit mode, 1 block per SM (what gemm_f32 and the
//     convolutions run) or capped at 128 registers for 2: "tf32_mma_128x128_b1",
//     "tf32_mma_128x128_b2", and the same for bf16 and fp16;
//   Hopper warpgroup MMA (wgmma, sm_90a), same tile and loaders: "tf32_wgmma_128x128",
//     "bf16_wgmma_128x128", "fp16_wgmma_128x128".
// Neither operand transposed, any M, N, K > 0, lda/ldb/ldc and alignment as for gemm_f32; the
// variant fixes the math mode (gemm_variant_mode). cudaErrorNotSupported for a tensor-core
// variant below sm_80, or a wgmma one where gemm_wgmma_supported() is false.
int gemm_variant_count();
const char* gemm_variant_name(int v);  // "f32_simt_128x128_k8_b2", ...; nullptr outside [0, count)
MathMode gemm_variant_mode(int v);
bool gemm_variant_supported(int v);  // on the current device (tensor-core variants: sm_80+)
// True when this build holds sm_90a code (IMAGERATE_CUDA_SM90A: CMAKE_CUDA_ARCHITECTURES names
// 90a) and the current device has compute capability 9.0 (H100, H200, GH200).
bool gemm_wgmma_supported();
// Which tensor-core main loop gemm_f32 and the three convolution passes run in TF32/BF16/FP16:
// mma.sync (the default) or, after set_use_wgmma(true) and where gemm_wgmma_supported(), wgmma.
// Process-wide, read at each launch. (The addon sets it from IMAGERATE_CUDA_WGMMA=1.)
void set_use_wgmma(bool on);
bool use_wgmma();  // set_use_wgmma(true) was called and gemm_wgmma_supported()
cudaError_t gemm_variant(int v, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                         const float* B, int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t stream);

// ---------------------------------------------------------------- conv2d (conv2d.cu)
// Same fields and meaning as imagerate::Conv2dParams (kernels/cpu/kernels.h).
struct Conv2dParams {
  int64_t n, c, h, w;      // input
  int64_t k, r, s;         // output channels, kernel height, kernel width
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int64_t p, q;            // output height, width (computed by the caller)
};
// y[n,k,p,q] = sum_{c,r,s} x[n,c,p*sh-ph+r*dh, q*sw-pw+s*dw] * w[k,c,r,s] (+ bias[k] if non-null).
// Layouts: x NCHW, w OIHW (KCRS), y NKPQ. Overwrites y.
cudaError_t conv2d_fwd(const Conv2dParams& cp, const float* x, const float* w, const float* bias,
                       float* y, MathMode mode, cudaStream_t stream);
// Fused: y = relu(conv2d_fwd(x, w) + bias) in one pass over y (bias may be null).
cudaError_t conv2d_fwd_bias_relu(const Conv2dParams& cp, const float* x, const float* w,
                                 const float* bias, float* y, MathMode mode, cudaStream_t stream);
// dx = conv_transpose(dy, w): overwrites dx.
cudaError_t conv2d_bwd_data(const Conv2dParams& cp, const float* dy, const float* w, float* dx,
                            MathMode mode, cudaStream_t stream);
// dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] * x[n,c,...]: overwrites dw. db[k] = sum dy if db non-null.
cudaError_t conv2d_bwd_filter(const Conv2dParams& cp, const float* x, const float* dy, float* dw,
                              float* db, MathMode mode, cudaStream_t stream);

// ---------------------------------------------------------------- pooling (pool2d.cu)
// Same fields and meaning as imagerate::Pool2dParams.
struct Pool2dParams {
  int64_t n, c, h, w;
  int64_t kh, kw, stride_h, stride_w, pad_h, pad_w;
  int64_t p, q;                 // output height, width
  bool count_include_pad;       // avg pool: divide by kh*kw (true) or by the in-bounds count
};
// argmax[n,c,p,q] = flat index h*W+w of the chosen input (first max on ties; a NaN wins);
// padding never wins. A window entirely in padding yields -inf and argmax -1.
cudaError_t maxpool2d_fwd(const Pool2dParams& pp, const float* x, float* y, int32_t* argmax,
                          cudaStream_t stream);
cudaError_t maxpool2d_bwd(const Pool2dParams& pp, const float* dy, const int32_t* argmax, float* dx,
                          cudaStream_t stream);
cudaError_t avgpool2d_fwd(const Pool2dParams& pp, const float* x, float* y, cudaStream_t stream);
cudaError_t avgpool2d_bwd(const Pool2dParams& pp, const float* dy, float* dx, cudaStream_t stream);

// ---------------------------------------------------------------- elementwise (elementwise.cu)
// Channel bias for NCHW (inner = H*W) or row bias for [rows, cols] (outer = rows, ch = cols, inner = 1).
cudaError_t bias_add(int64_t outer, int64_t ch, int64_t inner, const float* x, const float* b,
                     float* y, cudaStream_t stream);
cudaError_t bias_grad(int64_t outer, int64_t ch, int64_t inner, const float* dy, float* db,
                      cudaStream_t stream);  // overwrites db
cudaError_t relu_fwd(int64_t n, const float* x, float* y, cudaStream_t stream);
cudaError_t relu_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream);
cudaError_t add_f32(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream);
cudaError_t mul_f32(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream);
// y = alpha*x + beta*y; beta == 0 ignores y's old contents.
cudaError_t axpby_f32(int64_t n, float alpha, const float* x, float beta, float* y,
                      cudaStream_t stream);
cudaError_t scale_f32(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream);
cudaError_t fill_f32(int64_t n, float value, float* y, cudaStream_t stream);
cudaError_t copy_f32(int64_t n, const float* x, float* y, cudaStream_t stream);  // y = x (no overlap)
// Dropout (inverted), bit-identical mask to the CPU kernel for the same (seed, n, p).
cudaError_t dropout_fwd(int64_t n, float p, uint64_t seed, const float* x, float* mask, float* y,
                        cudaStream_t stream);
// The same with the seed read from device memory (one uint32) when the kernel runs: a captured
// CUDA graph draws a new mask every replay from the seed the host writes there.
cudaError_t dropout_fwd_device_seed(int64_t n, float p, const uint32_t* seed, const float* x, float* mask,
                                    float* y, cudaStream_t stream);
// out (device, 2 doubles): out[0] = sum x^2 (in double), out[1] = number of non-finite values.
cudaError_t sumsq_check(int64_t n, const float* x, double* out, cudaStream_t stream);

// ---------------------------------------------------------------- faults
// Bad data a kernel cannot refuse before it runs (a label outside [0, C): the labels live on
// the device) is counted in a fault slot of kFaultWords uint32 (device memory, zeroed by the
// caller): [0] += 1 per bad row, [1] = max(~row) so ~[1] is the first bad row, [2] = max(C),
// [3] = max(key) and [4] = max(~key) with key = (uint32_t)label ^ 0x80000000u (ordered as the
// int32 labels), so the largest bad label is (int32_t)([3] ^ 0x80000000u) and the smallest
// (int32_t)(~[4] ^ 0x80000000u); [5..7] are unused. Only max/add atomics: the words do not
// depend on the order the rows run in. A null slot counts nothing. native/cuda_memory.cc reads
// the slots back at sync/download.
constexpr int kFaultWords = 8;
enum FaultSlot { kFaultXentFwd = 0, kFaultXentBwd = 1, kFaultSlots = 2 };

// ---------------------------------------------------------------- loss (softmax_xent.cu)
cudaError_t softmax_xent_fwd(int64_t N, int64_t C, float eps, const float* logits,
                             const int32_t* labels, float* probs, float* loss, uint32_t* fault,
                             cudaStream_t stream);
cudaError_t softmax_xent_bwd(int64_t N, int64_t C, float eps, float scale, const float* probs,
                             const int32_t* labels, float* dlogits, uint32_t* fault, cudaStream_t stream);

// ---------------------------------------------------------------- optimiser (sgd.cu)
cudaError_t sgd_momentum_update(int64_t n, float lr, float momentum, float weight_decay,
                                bool nesterov, float* w, const float* g, float* v,
                                cudaStream_t stream);
// The same with lr read from device memory (one float) when the kernel runs (CUDA graphs).
cudaError_t sgd_momentum_update_device_lr(int64_t n, const float* lr, float momentum, float weight_decay,
                                          bool nesterov, float* w, const float* g, float* v, cudaStream_t stream);

// ---------------------------------------------------------------- normalisation (batchnorm.cu, lrn.cu)
cudaError_t batchnorm2d_fwd_train(int64_t outer, int64_t ch, int64_t inner, float eps,
                                  float momentum, const float* x, const float* gamma,
                                  const float* beta, float* y, float* save_mean,
                                  float* save_invstd, float* running_mean, float* running_var,
                                  cudaStream_t stream);
cudaError_t batchnorm2d_fwd_eval(int64_t outer, int64_t ch, int64_t inner, float eps,
                                 const float* x, const float* gamma, const float* beta,
                                 const float* running_mean, const float* running_var, float* y,
                                 cudaStream_t stream);
cudaError_t batchnorm2d_bwd(int64_t outer, int64_t ch, int64_t inner, const float* x,
                            const float* dy, const float* gamma, const float* save_mean,
                            const float* save_invstd, float* dx, float* dgamma, float* dbeta,
                            cudaStream_t stream);
// Fused BN + ReLU: y = relu(batchnorm(x)), same statistics/running-stat updates as above.
cudaError_t batchnorm2d_fwd_train_relu(int64_t outer, int64_t ch, int64_t inner, float eps,
                                       float momentum, const float* x, const float* gamma,
                                       const float* beta, float* y, float* save_mean,
                                       float* save_invstd, float* running_mean, float* running_var,
                                       cudaStream_t stream);
cudaError_t batchnorm2d_fwd_eval_relu(int64_t outer, int64_t ch, int64_t inner, float eps,
                                      const float* x, const float* gamma, const float* beta,
                                      const float* running_mean, const float* running_var,
                                      float* y, cudaStream_t stream);
// Backward of the fused forward: y is the fused output relu(bn(x)); the BN backward sees
// dy * (y > 0), exactly relu_bwd followed by batchnorm2d_bwd, without the intermediate tensor.
cudaError_t batchnorm2d_bwd_relu(int64_t outer, int64_t ch, int64_t inner, const float* x,
                                 const float* y, const float* dy, const float* gamma,
                                 const float* save_mean, const float* save_invstd, float* dx,
                                 float* dgamma, float* dbeta, cudaStream_t stream);
cudaError_t lrn_fwd(int64_t n, int64_t c, int64_t hw, int64_t radius, float bias, float alpha,
                    float beta, const float* x, float* y, float* scale, cudaStream_t stream);
cudaError_t lrn_bwd(int64_t n, int64_t c, int64_t hw, int64_t radius, float bias, float alpha,
                    float beta, const float* x, const float* y, const float* scale,
                    const float* dy, float* dx, cudaStream_t stream);

}  // namespace cuda
}  // namespace imagerate
