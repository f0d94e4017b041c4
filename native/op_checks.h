// op_checks.h: the op exports' argument lists and checks, shared by both addons. For every op,
// an OpSpec names the export, its argument count and the function that parses the JS arguments
// (op_args.h), checks the byte needs of every buffer and the aliasing rules, and returns the
// checked call: dims, scalars and resolved pointers, ready for a kernel. A backend only says
// how it runs each call (cpu_ops_*.cc: queue the CPU kernel; cuda_ops_*.cc: launch the CUDA
// kernel), through define_op() (addon_common.h).
//
// The checks live by family: op_checks_nn.cc (gemm, conv, pool), op_checks_pointwise.cc
// (copy, elementwise, loss, optimiser), op_checks_norm.cc (batch norm, LRN); each file's header
// comment states the argument lists and aliasing rules. The CUDA addon's fused extras
// (conv2dFwdBiasRelu, batchnorm2d*Relu) take the arguments of their unfused forms (the fused
// batch-norm backward adds the forward's output y after x), and are checked here too.
//
// Conv and pool parameters come back as Conv2dShape/Pool2dShape; kernel_params<P>() turns them
// into a backend's own parameter struct (kernels.h, kernels.cuh: the same fields, in order).
#pragma once
#include <cstdint>

#include "op_args.h"

namespace imagerate {

// An op export: its name, how many arguments it takes, and its checks.
template <class Call>
struct OpSpec {
  const char* name;
  size_t args;
  Call (*check)(const Args& a, BufferTable& bufs);
};

// ------------------------------------------------------------------ gemm, conv, pool
struct Conv2dShape {
  int64_t n, c, h, w, k, r, s, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, p, q;
};
struct Pool2dShape {
  int64_t n, c, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, p, q;
  bool count_include_pad;
};
template <class P>
P kernel_params(const Conv2dShape& s) {
  return P{s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dil_h, s.dil_w, s.p, s.q};
}
template <class P>
P kernel_params(const Pool2dShape& s) {
  return P{s.n, s.c, s.h, s.w, s.kh, s.kw, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.p, s.q, s.count_include_pad};
}

struct GemmCall {
  bool ta, tb;
  int64_t m, n, k;
  float alpha, beta;
  const float *a, *b;
  float* c;
  int64_t lda, ldb, ldc;
};
struct Conv2dFwdCall {
  Conv2dShape cp;
  const float *x, *w, *bias;  // bias may be null
  float* y;
};
struct Conv2dBwdDataCall {
  Conv2dShape cp;
  const float *dy, *w;
  float* dx;
};
struct Conv2dBwdFilterCall {
  Conv2dShape cp;
  const float *x, *dy;
  float *dw, *db;  // db may be null
};
struct Maxpool2dFwdCall {
  Pool2dShape pp;
  const float* x;
  float* y;
  int32_t* argmax;
};
struct Maxpool2dBwdCall {
  Pool2dShape pp;
  const float* dy;
  const int32_t* argmax;
  float* dx;
};
struct Pool2dCall {  // avgpool2dFwd (x -> y) and avgpool2dBwd (dy -> dx)
  Pool2dShape pp;
  const float* in;
  float* out;
};

extern const OpSpec<GemmCall> kGemm;
extern const OpSpec<Conv2dFwdCall> kConv2dFwd, kConv2dFwdBiasRelu;
extern const OpSpec<Conv2dBwdDataCall> kConv2dBwdData;
extern const OpSpec<Conv2dBwdFilterCall> kConv2dBwdFilter;
extern const OpSpec<Maxpool2dFwdCall> kMaxpool2dFwd;
extern const OpSpec<Maxpool2dBwdCall> kMaxpool2dBwd;
extern const OpSpec<Pool2dCall> kAvgpool2dFwd, kAvgpool2dBwd;

// ------------------------------------------------------------------ copy, elementwise, loss, optimiser
struct CopyCall {  // n floats from src + srcOffset to dst + dstOffset
  int64_t n, src_offset, dst_offset;
  Buf src, dst;
  const float* s;  // src.f32() + srcOffset
  float* d;        // dst.f32() + dstOffset
};
struct BiasAddCall {
  int64_t outer, ch, inner;
  const float *x, *b;
  float* y;
};
struct BiasGradCall {
  int64_t outer, ch, inner;
  const float* dy;
  float* db;
};
struct UnaryCall {  // reluFwd: y = f(x)
  int64_t n;
  const float* x;
  float* y;
};
struct ReluBwdCall {
  int64_t n;
  const float *y, *dy;
  float* dx;
};
struct BinaryCall {  // add, mul: y = a (op) b
  int64_t n;
  const float *a, *b;
  float* y;
};
struct AxpbyCall {  // axpby: y = alpha*x + beta*y; scale: y = alpha*x (beta unused)
  int64_t n;
  float alpha, beta;
  const float* x;
  float* y;
};
struct FillCall {
  int64_t n;
  float value;
  float* y;
};
struct DropoutFwdCall {
  int64_t n;
  float p;
  uint64_t seed;
  const float* x;
  float *mask, *y;
  const uint32_t* seed_dev = nullptr;  // dropoutFwdDeviceSeed (CUDA): the seed is read from here
};
struct SumsqCheckCall {
  int64_t n;
  const float* x;
  double* out;
};
struct SoftmaxXentFwdCall {
  int64_t n, c;
  float eps;
  const float* logits;
  const int32_t* labels;
  float *probs, *loss;
};
struct SoftmaxXentBwdCall {
  int64_t n, c;
  float eps, scale;
  const float* probs;
  const int32_t* labels;
  float* dlogits;
};
struct SgdUpdateCall {
  int64_t n;
  float lr, momentum, weight_decay;
  bool nesterov;
  float *w, *v;
  const float* g;
  const float* lr_dev = nullptr;  // sgdUpdateDeviceLr (CUDA): lr is read from here
};

extern const OpSpec<CopyCall> kCopy;
extern const OpSpec<BiasAddCall> kBiasAdd;
extern const OpSpec<BiasGradCall> kBiasGrad;
extern const OpSpec<UnaryCall> kReluFwd;
extern const OpSpec<ReluBwdCall> kReluBwd;
extern const OpSpec<BinaryCall> kAdd, kMul;
extern const OpSpec<AxpbyCall> kAxpby, kScale;
extern const OpSpec<FillCall> kFill;
extern const OpSpec<DropoutFwdCall> kDropoutFwd, kDropoutFwdDeviceSeed;
extern const OpSpec<SumsqCheckCall> kSumsqCheck;
extern const OpSpec<SoftmaxXentFwdCall> kSoftmaxXentFwd;
extern const OpSpec<SoftmaxXentBwdCall> kSoftmaxXentBwd;
extern const OpSpec<SgdUpdateCall> kSgdUpdate, kSgdUpdateDeviceLr;

// ------------------------------------------------------------------ batch norm, LRN
struct BnFwdTrainCall {
  int64_t outer, ch, inner;
  float eps, momentum;
  const float *x, *gamma, *beta;
  float *y, *save_mean, *save_invstd, *running_mean, *running_var;
};
struct BnFwdEvalCall {
  int64_t outer, ch, inner;
  float eps;
  const float *x, *gamma, *beta, *running_mean, *running_var;
  float* y;
};
struct BnBwdCall {
  int64_t outer, ch, inner;
  const float *x, *y, *dy, *gamma, *save_mean, *save_invstd;  // y: the fused form only (else null)
  float *dx, *dgamma, *dbeta;                                  // dx may be null
};
struct LrnCall {  // lrnFwd fills y and scale; lrnBwd also reads them, with dy, and fills dx
  int64_t n, c, hw, radius;
  float bias, alpha, beta;
  const float* x;
  float *y, *scale;  // outputs of lrnFwd, inputs of lrnBwd
  const float* dy;   // lrnBwd only
  float* dx;         // lrnBwd only
};

extern const OpSpec<BnFwdTrainCall> kBatchnorm2dFwdTrain, kBatchnorm2dFwdTrainRelu;
extern const OpSpec<BnFwdEvalCall> kBatchnorm2dFwdEval, kBatchnorm2dFwdEvalRelu;
extern const OpSpec<BnBwdCall> kBatchnorm2dBwd, kBatchnorm2dBwdRelu;
extern const OpSpec<LrnCall> kLrnFwd, kLrnBwd;

}  // namespace imagerate
