// Glue for kernels/wgsl/sgd.wgsl: the SGD-with-momentum step, one dispatch (one per chunk of
// views when a buffer is too large to bind whole, chunk.ts).
import type { OpImpls } from './index.js';
import { params } from '../runtime.js';
import { flatChunks } from './chunk.js';
import { F, dim, distinct, finite, fitsU32 } from './args.js';

const WG = 256;

export const sgdOps: Partial<OpImpls> = {
  sgdUpdate(d, n, lr, momentum, weightDecay, nesterov, w, g, v) {
    const op = 'sgdUpdate';
    dim(op, 'n', n);
    fitsU32(op, 'n', n);
    finite(op, 'lr', lr); finite(op, 'momentum', momentum); finite(op, 'weightDecay', weightDecay);
    if (typeof nesterov !== 'boolean' && nesterov !== 0 && nesterov !== 1) throw new TypeError(`${op}: nesterov must be a boolean, got ${String(nesterov)}`);
    d.need(op, 'w', w, n * F); d.need(op, 'g', g, n * F); d.need(op, 'v', v, n * F);
    distinct(op, w, 'w', g, 'g'); distinct(op, v, 'v', w, 'w'); distinct(op, v, 'v', g, 'g');
    flatChunks(d, op, n, [g, w, v], (bind, _off, len) => {
      const p = params().u(len).f(lr).f(momentum).f(weightDecay).u(nesterov ? 1 : 0);
      d.dispatch(op, { file: 'sgd.wgsl', entry: 'sgd_update' }, p, [bind(g)], [bind(w), bind(v)], d.grid(len, WG));
    });
  },
};
