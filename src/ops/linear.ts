// Matrix multiply and the fully connected layer, y = x W^T + b, with W stored [out, in]
// (PyTorch's layout, so checkpoints and golden files map one to one).
import { Tensor } from '../tensor.js';
import { record } from '../autograd/tape.js';
import { ShapeError, fmtShape } from '../util/errors.js';
import { empty, expectRank, expectSameBackend, opLabel } from './util.js';

/** y[B, out] = x[B, in] · w[out, in]^T (+ b[out]). */
export function linear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const op = opLabel('linear', w); // names the layer in shape errors (docs/reliability.md)
  expectRank(op, 'input', x, 2);
  expectRank(op, 'weight', w, 2);
  const [B, inF] = x.shape;
  const [outF, inW] = w.shape;
  if (inF !== inW) throw new ShapeError(op, `input ${fmtShape(x.shape)} has ${inF} features but weight ${fmtShape(w.shape)} expects ${inW}`);
  if (b && (b.rank !== 1 || b.shape[0] !== outF)) throw new ShapeError(op, `bias ${fmtShape(b.shape)} does not match weight ${fmtShape(w.shape)}`);
  const be = expectSameBackend('linear', x, w, b);
  const y = empty(be, [B, outF]);
  be.gemm({ transA: false, transB: true, m: B, n: outF, k: inF, alpha: 1, beta: 0, lda: inF, ldb: inF, ldc: outF }, x.buf, w.buf, y.buf);
  if (b) be.biasAdd(B, outF, 1, y.buf, b.buf, y.buf);
  return record(y, 'linear', [x, w, b], (gyAny) => {
    const gy = gyAny as Tensor;
    let dx: Tensor | null = null, dw: Tensor | null = null, db: Tensor | null = null;
    if (x.requiresGrad) {
      dx = empty(be, x.shape); // dx[B, in] = gy[B, out] · w[out, in]
      be.gemm({ transA: false, transB: false, m: B, n: inF, k: outF, alpha: 1, beta: 0, lda: outF, ldb: inF, ldc: inF }, gy.buf, w.buf, dx.buf);
    }
    if (w.requiresGrad) {
      dw = empty(be, w.shape); // dw[out, in] = gy^T · x
      be.gemm({ transA: true, transB: false, m: outF, n: inF, k: B, alpha: 1, beta: 0, lda: outF, ldb: inF, ldc: inF }, gy.buf, x.buf, dw.buf);
    }
    if (b && b.requiresGrad) {
      db = empty(be, b.shape);
      be.biasGrad(B, outF, 1, gy.buf, db.buf);
    }
    return [dx, dw, db];
  });
}

/** c[M, N] = a[M, K] · b[K, N]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  expectRank('matmul', 'a', a, 2);
  expectRank('matmul', 'b', b, 2);
  const [M, K] = a.shape;
  const [K2, N] = b.shape;
  if (K !== K2) throw new ShapeError('matmul', `inner dimensions differ: ${fmtShape(a.shape)} · ${fmtShape(b.shape)}`);
  const be = expectSameBackend('matmul', a, b);
  const c = empty(be, [M, N]);
  be.gemm({ transA: false, transB: false, m: M, n: N, k: K, alpha: 1, beta: 0, lda: K, ldb: N, ldc: N }, a.buf, b.buf, c.buf);
  return record(c, 'matmul', [a, b], (gyAny) => {
    const gy = gyAny as Tensor;
    let da: Tensor | null = null, db: Tensor | null = null;
    if (a.requiresGrad) {
      da = empty(be, a.shape); // da = gy · b^T
      be.gemm({ transA: false, transB: true, m: M, n: K, k: N, alpha: 1, beta: 0, lda: N, ldb: N, ldc: K }, gy.buf, b.buf, da.buf);
    }
    if (b.requiresGrad) {
      db = empty(be, b.shape); // db = a^T · gy
      be.gemm({ transA: true, transB: false, m: K, n: N, k: M, alpha: 1, beta: 0, lda: K, ldb: N, ldc: N }, a.buf, gy.buf, db.buf);
    }
    return [da, db];
  });
}
