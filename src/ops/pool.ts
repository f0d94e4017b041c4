// Max and average pooling over NCHW. Max pooling keeps the argmax indices for backward.
import { Tensor } from '../tensor.js';
import type { Pool2dParams } from '../backend/backend.js';
import { record } from '../autograd/tape.js';
import { ShapeError } from '../util/errors.js';
import { Pair, empty, expectRank, outSize, pair } from './util.js';

export interface Pool2dOptions {
  kernel: Pair;
  stride?: Pair; // defaults to the kernel size
  padding?: Pair;
  countIncludePad?: boolean; // avg pool only; default true (PyTorch's default)
}

export function pool2dParams(op: string, shape: readonly number[], opts: Pool2dOptions): Pool2dParams {
  const [n, c, h, w] = shape;
  const [kh, kw] = pair(opts.kernel);
  const [strideH, strideW] = pair(opts.stride ?? opts.kernel);
  const [padH, padW] = pair(opts.padding ?? 0);
  if (padH * 2 > kh || padW * 2 > kw) throw new ShapeError(op, `padding (${padH}, ${padW}) must be at most half the window (${kh}, ${kw})`);
  for (const v of [kh, kw, strideH, strideW]) if (!Number.isInteger(v) || v < 1) throw new ShapeError(op, `window and stride must be integers >= 1, got ${v}`);
  const p = outSize(op, h, kh, strideH, padH);
  const q = outSize(op, w, kw, strideW, padW);
  return { n, c, h, w, kh, kw, strideH, strideW, padH, padW, p, q, countIncludePad: opts.countIncludePad ?? true };
}

export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  expectRank('maxPool2d', 'input', x, 4);
  const pp = pool2dParams('maxPool2d', x.shape, opts);
  const be = x.backend;
  const y = empty(be, [pp.n, pp.c, pp.p, pp.q]);
  const argmax = Tensor.empty(be, y.shape, 'int32');
  be.maxpool2dFwd(pp, x.buf, y.buf, argmax.buf);
  return record(y, 'maxPool2d', [x], (gy) => {
    const dx = empty(be, x.shape);
    be.maxpool2dBwd(pp, (gy as Tensor).buf, argmax.buf, dx.buf);
    return [dx];
  }, { saved: [argmax] });
}

export function avgPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  expectRank('avgPool2d', 'input', x, 4);
  const pp = pool2dParams('avgPool2d', x.shape, opts);
  const be = x.backend;
  const y = empty(be, [pp.n, pp.c, pp.p, pp.q]);
  be.avgpool2dFwd(pp, x.buf, y.buf);
  return record(y, 'avgPool2d', [x], (gy) => {
    const dx = empty(be, x.shape);
    be.avgpool2dBwd(pp, (gy as Tensor).buf, dx.buf);
    return [dx];
  });
}
