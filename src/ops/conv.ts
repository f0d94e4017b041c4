// 2-D convolution (cross-correlation, as in every framework), NCHW input, OIHW weight.
import { Tensor } from '../tensor.js';
import type { Conv2dParams } from '../backend/backend.js';
import { record } from '../autograd/tape.js';
import { ShapeError, fmtShape } from '../util/errors.js';
import { Pair, empty, expectRank, expectSameBackend, opLabel, outSize, pair } from './util.js';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
}

export function conv2dParams(xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}, op = 'conv2d'): Conv2dParams {
  const [n, c, h, w] = xShape;
  const [k, cw, r, s] = wShape;
  if (c !== cw) {
    throw new ShapeError(op, `input ${fmtShape(xShape)} has ${c} channels but weight ${fmtShape(wShape)} expects ${cw}`);
  }
  const [strideH, strideW] = pair(opts.stride ?? 1);
  const [padH, padW] = pair(opts.padding ?? 0);
  const [dilH, dilW] = pair(opts.dilation ?? 1);
  for (const [name, v, min] of [['stride', strideH, 1], ['stride', strideW, 1], ['padding', padH, 0], ['padding', padW, 0], ['dilation', dilH, 1], ['dilation', dilW, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new ShapeError(op, `${name} must be an integer >= ${min}, got ${v}`);
  }
  const p = outSize(op, h, r, strideH, padH, dilH);
  const q = outSize(op, w, s, strideW, padW, dilW);
  return { n, c, h, w, k, r, s, strideH, strideW, padH, padW, dilH, dilW, p, q };
}

export function conv2d(x: Tensor, w: Tensor, b: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = opLabel('conv2d', w); // names the layer in shape errors (docs/reliability.md)
  expectRank(op, 'input', x, 4);
  expectRank(op, 'weight', w, 4);
  const cp = conv2dParams(x.shape, w.shape, opts, op);
  if (b && (b.rank !== 1 || b.shape[0] !== cp.k)) throw new ShapeError(op, `bias ${fmtShape(b.shape)} does not match weight ${fmtShape(w.shape)}`);
  const be = expectSameBackend('conv2d', x, w, b);
  const y = empty(be, [cp.n, cp.k, cp.p, cp.q]);
  be.conv2dFwd(cp, x.buf, w.buf, b ? b.buf : null, y.buf);
  return record(y, 'conv2d', [x, w, b], (gyAny) => {
    const gy = gyAny as Tensor;
    let dx: Tensor | null = null, dw: Tensor | null = null, db: Tensor | null = null;
    if (x.requiresGrad) {
      dx = empty(be, x.shape);
      be.conv2dBwdData(cp, gy.buf, w.buf, dx.buf);
    }
    if (w.requiresGrad || (b && b.requiresGrad)) {
      dw = empty(be, w.shape);
      db = b && b.requiresGrad ? empty(be, b.shape) : null;
      be.conv2dBwdFilter(cp, x.buf, gy.buf, dw.buf, db ? db.buf : null);
      if (!w.requiresGrad) {
        dw.dispose();
        dw = null;
      }
    }
    return [dx, dw, db];
  });
}
