// Elementwise ops on tensors of identical shape (residual add, masks) and scaling.
import { Tensor } from '../tensor.js';
import { record } from '../autograd/tape.js';
import { empty, expectSameBackend, expectSameShape } from './util.js';

export function add(a: Tensor, b: Tensor): Tensor {
  expectSameShape('add', a, b);
  const be = expectSameBackend('add', a, b);
  const y = empty(be, a.shape);
  be.add(a.size, a.buf, b.buf, y.buf);
  return record(y, 'add', [a, b], (gy) => [gy as Tensor, (gy as Tensor).reshape(b.shape)]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  expectSameShape('mul', a, b);
  const be = expectSameBackend('mul', a, b);
  const y = empty(be, a.shape);
  be.mul(a.size, a.buf, b.buf, y.buf);
  return record(y, 'mul', [a, b], (gy) => {
    const g = gy as Tensor;
    const da = a.requiresGrad ? empty(be, a.shape) : null;
    const db = b.requiresGrad ? empty(be, b.shape) : null;
    if (da) be.mul(a.size, g.buf, b.buf, da.buf);
    if (db) be.mul(b.size, g.buf, a.buf, db.buf);
    return [da, db];
  });
}

export function scale(x: Tensor, alpha: number): Tensor {
  const be = x.backend;
  const y = empty(be, x.shape);
  be.scale(x.size, alpha, x.buf, y.buf);
  return record(y, 'scale', [x], (gy) => {
    const dx = empty(be, x.shape);
    be.scale(x.size, alpha, (gy as Tensor).buf, dx.buf);
    return [dx];
  });
}
