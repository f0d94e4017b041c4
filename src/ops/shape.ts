// Shape-only ops: reshape/flatten are views (no copy); their gradient is a view back.
import { Tensor, Shape } from '../tensor.js';
import { record } from '../autograd/tape.js';

export function reshape(x: Tensor, shape: Shape): Tensor {
  const y = x.reshape(shape);
  return record(y, 'reshape', [x], (gy) => [(gy as Tensor).reshape(x.shape)]);
}

/** [N, ...] -> [N, prod(...)] */
export function flatten(x: Tensor): Tensor {
  return reshape(x, [x.shape[0], x.size / Math.max(1, x.shape[0])]);
}
