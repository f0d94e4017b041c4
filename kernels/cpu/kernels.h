// kernels.h: the CPU kernel entry points. Plain C++ on raw float pointers, no Node-API.
//
// Layouts: activations NCHW, conv weights OIHW (out, in, kh, kw), all row-major and dense.
// Every kernel is single-call and synchronous; kernels parallelise internally with
// parallel_for (parallel.h). Shapes are validated by the caller (native/), not here.
#pragma once
#include <cstdint>

namespace imagerate {

// ---------------------------------------------------------------- GEMM (gemm.cc)
// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C. Row-major; lda/ldb/ldc are the row
// strides of A, B, C as stored (A is K x M when trans_a). beta == 0 ignores C's old contents
// (NaN in C does not leak through).
void gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc);
// The instruction set the GEMM micro-kernel uses: "avx2-fma" or "generic". Chosen once at
// load time by CPU feature detection; IMAGERATE_CPU_ISA=generic forces the portable path.
const char* gemm_isa();
void gemm_force_isa(const char* isa);  // "avx2-fma" | "generic"; ignored if unsupported

// ---------------------------------------------------------------- conv2d (conv2d.cc)
struct Conv2dParams {
  int64_t n, c, h, w;      // input
  int64_t k, r, s;         // output channels, kernel height, kernel width
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int64_t p, q;            // output height, width (computed by the caller)
};
// y[n,k,p,q] = sum_{c,r,s} x[n,c,p*sh-ph+r*dh, q*sw-pw+s*dw] * w[k,c,r,s] (+ bias[k] if non-null)
void conv2d_fwd(const Conv2dParams& cp, const float* x, const float* w, const float* bias, float* y);
// dx = conv_transpose(dy, w): overwrites dx.
void conv2d_bwd_data(const Conv2dParams& cp, const float* dy, const float* w, float* dx);
// dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] * x[n,c,...]: overwrites dw. db[k] = sum dy if db non-null.
void conv2d_bwd_filter(const Conv2dParams& cp, const float* x, const float* dy, float* dw, float* db);

// ---------------------------------------------------------------- pooling (pool2d.cc)
struct Pool2dParams {
  int64_t n, c, h, w;
  int64_t kh, kw, stride_h, stride_w, pad_h, pad_w;
  int64_t p, q;                 // output height, width
  bool count_include_pad;       // avg pool: divide by kh*kw (true) or by the in-bounds count
};
// Max pool. argmax[n,c,p,q] = flat index h*W+w of the chosen input (first max on ties);
// padding never wins. A window entirely in padding yields -inf and argmax -1.
void maxpool2d_fwd(const Pool2dParams& pp, const float* x, float* y, int32_t* argmax);
void maxpool2d_bwd(const Pool2dParams& pp, const float* dy, const int32_t* argmax, float* dx);
void avgpool2d_fwd(const Pool2dParams& pp, const float* x, float* y);
void avgpool2d_bwd(const Pool2dParams& pp, const float* dy, float* dx);

// ---------------------------------------------------------------- elementwise (elementwise.cc)
// Channel bias for NCHW (inner = H*W) or row bias for [rows, cols] (outer = rows, ch = cols, inner = 1).
void bias_add(int64_t outer, int64_t ch, int64_t inner, const float* x, const float* b, float* y);
void bias_grad(int64_t outer, int64_t ch, int64_t inner, const float* dy, float* db);  // overwrites db
void relu_fwd(int64_t n, const float* x, float* y);
void relu_bwd(int64_t n, const float* y, const float* dy, float* dx);  // dx = dy * (y > 0)
void add_f32(int64_t n, const float* a, const float* b, float* y);     // y = a + b
void mul_f32(int64_t n, const float* a, const float* b, float* y);     // y = a * b
void axpby_f32(int64_t n, float alpha, const float* x, float beta, float* y);  // y = alpha*x + beta*y
void scale_f32(int64_t n, float alpha, const float* x, float* y);      // y = alpha * x
void fill_f32(int64_t n, float value, float* y);
// Dropout (inverted): mask[i] = keep ? 1/(1-p) : 0 from a counter-based hash of (seed, i);
// y = x * mask. The same (seed, n, p) always gives the same mask on every machine.
void dropout_fwd(int64_t n, float p, uint64_t seed, const float* x, float* mask, float* y);
// Sum of squares and count of non-finite values, in double: out[0] = sum x^2, out[1] = #nonfinite.
void sumsq_check(int64_t n, const float* x, double* out);

// ---------------------------------------------------------------- loss (softmax_xent.cc)
// logits [N, C], labels int32 [N] in [0, C). probs = softmax(logits) (written);
// loss[i] = -sum_j t_ij log probs_ij with t = (1-eps)*onehot + eps/C (label smoothing eps).
void softmax_xent_fwd(int64_t N, int64_t C, float eps, const float* logits, const int32_t* labels,
                      float* probs, float* loss);
// dlogits = scale * (probs - t). (scale is dLoss/dloss_i, e.g. 1/N for a mean.)
void softmax_xent_bwd(int64_t N, int64_t C, float eps, float scale, const float* probs,
                      const int32_t* labels, float* dlogits);

// ---------------------------------------------------------------- optimiser (sgd.cc)
// PyTorch's SGD: g' = g + wd*w; v = momentum*v + g'; w -= lr * (nesterov ? g' + momentum*v : v).
void sgd_momentum_update(int64_t n, float lr, float momentum, float weight_decay, bool nesterov,
                         float* w, const float* g, float* v);

// ---------------------------------------------------------------- normalisation (batchnorm.cc, lrn.cc)
// Batch norm over NCHW with per-channel statistics (outer = N, ch = C, inner = H*W).
// Training: mean/var over (N, H, W) (biased var for normalising), writes save_mean and
// save_invstd = 1/sqrt(var + eps) for backward, and updates running stats in place:
// running = (1 - momentum) * running + momentum * batch (running_var uses the unbiased var).
void batchnorm2d_fwd_train(int64_t outer, int64_t ch, int64_t inner, float eps, float momentum,
                           const float* x, const float* gamma, const float* beta, float* y,
                           float* save_mean, float* save_invstd, float* running_mean, float* running_var);
// Evaluation: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.
void batchnorm2d_fwd_eval(int64_t outer, int64_t ch, int64_t inner, float eps, const float* x,
                          const float* gamma, const float* beta, const float* running_mean,
                          const float* running_var, float* y);
// Backward of the training forward: overwrites dx, dgamma, dbeta (dx may be null).
void batchnorm2d_bwd(int64_t outer, int64_t ch, int64_t inner, const float* x, const float* dy,
                     const float* gamma, const float* save_mean, const float* save_invstd,
                     float* dx, float* dgamma, float* dbeta);
// Local response normalisation across channels, TensorFlow's definition (tf.nn.lrn):
// sqr_sum[n,c,h,w] = sum_{c' = c-radius}^{c+radius} x[n,c',h,w]^2 (clipped to [0, C)),
// y = x / (bias + alpha * sqr_sum)^beta. `scale` receives bias + alpha * sqr_sum for backward.
// (PyTorch's LocalResponseNorm(size, alpha, beta, k) is radius = (size-1)/2, alpha/size, beta, k.)
void lrn_fwd(int64_t n, int64_t c, int64_t hw, int64_t radius, float bias, float alpha, float beta,
             const float* x, float* y, float* scale);
void lrn_bwd(int64_t n, int64_t c, int64_t hw, int64_t radius, float bias, float alpha, float beta,
             const float* x, const float* y, const float* scale, const float* dy, float* dx);

}  // namespace imagerate
