// im2col.h: the column transform behind conv2d.cc, on one image at a time.
//
// For one NCHW image x_n [C, H, W], the column matrix has one row per (c, r, s) and one column
// per output pixel (p, q):
//   col[(c*R + r)*S + s, p*Q + q] = x_n[c, p*sh - ph + r*dh, q*sw - pw + s*dw]   (0 outside).
// Both functions work on a block of it: channels [c0, c1) and output rows [p0, p1), stored
// densely as [(c1-c0)*R*S, (p1-p0)*Q] (row stride (p1-p0)*Q). A block of rows for a channel
// range touches only those input channels, so channel ranges can run on different threads.
// Serial; the caller decides the threading.
#pragma once
#include <cstdint>

#include "kernels.h"

namespace imagerate {

// Gathers the column block. Overwrites every element of col (padding becomes 0).
void im2col(const Conv2dParams& cp, const float* x_n, int64_t c0, int64_t c1, int64_t p0,
            int64_t p1, float* col);

// The adjoint: dx_n[c, h, w] += every col element that im2col would have read from there,
// for channels [c0, c1) and output rows [p0, p1). Accumulates, so zero dx_n first.
void col2im_add(const Conv2dParams& cp, const float* col, int64_t c0, int64_t c1, int64_t p0,
                int64_t p1, float* dx_n);

}  // namespace imagerate
