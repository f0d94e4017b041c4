// Glue for kernels/wgsl/pointwise.wgsl: bias add, ReLU, add/mul/axpby/scale/fill/copy.
import type { OpImpls } from './index.js';
import { Dispatcher, params } from '../runtime.js';

const FILE = 'pointwise.wgsl';
const WG = 256;
const F = 4;

function flat(d: Dispatcher, op: string, entry: string, n: number, p: ReturnType<typeof params>, reads: Parameters<Dispatcher['dispatch']>[3], writes: Parameters<Dispatcher['dispatch']>[4]): void {
  if (n === 0) return;
  d.dispatch(op, { file: FILE, entry }, p, reads, writes, d.grid(n, WG));
}

export const pointwiseOps: Partial<OpImpls> = {
  biasAdd(d, outer, ch, inner, x, b, y) {
    const n = outer * ch * inner;
    d.need('biasAdd', 'x', x, n * F); d.need('biasAdd', 'b', b, ch * F); d.need('biasAdd', 'y', y, n * F);
    flat(d, 'biasAdd', 'bias_add', n, params().u(n).f(0).f(0).u(ch).u(inner), [x, b], [y]);
  },
  reluFwd(d, n, x, y) {
    d.need('reluFwd', 'x', x, n * F); d.need('reluFwd', 'y', y, n * F);
    flat(d, 'reluFwd', 'relu_fwd', n, params().u(n), [x], [y]);
  },
  reluBwd(d, n, y, dy, dx) {
    d.need('reluBwd', 'y', y, n * F); d.need('reluBwd', 'dy', dy, n * F); d.need('reluBwd', 'dx', dx, n * F);
    flat(d, 'reluBwd', 'relu_bwd', n, params().u(n), [y, dy], [dx]);
  },
  add(d, n, a, b, y) {
    d.need('add', 'a', a, n * F); d.need('add', 'b', b, n * F); d.need('add', 'y', y, n * F);
    flat(d, 'add', 'add', n, params().u(n), [a, b], [y]);
  },
  mul(d, n, a, b, y) {
    d.need('mul', 'a', a, n * F); d.need('mul', 'b', b, n * F); d.need('mul', 'y', y, n * F);
    flat(d, 'mul', 'mul', n, params().u(n), [a, b], [y]);
  },
  axpby(d, n, alpha, x, beta, y) {
    d.need('axpby', 'x', x, n * F); d.need('axpby', 'y', y, n * F);
    flat(d, 'axpby', 'axpby', n, params().u(n).f(alpha).f(beta), [x], [y]);
  },
  scale(d, n, alpha, x, y) {
    d.need('scale', 'x', x, n * F); d.need('scale', 'y', y, n * F);
    flat(d, 'scale', 'scale', n, params().u(n).f(alpha), [x], [y]);
  },
  fill(d, n, value, y) {
    d.need('fill', 'y', y, n * F);
    flat(d, 'fill', 'fill', n, params().u(n).f(value), [], [y]);
  },
  copy(d, n, src, srcOffset, dst, dstOffset) {
    d.need('copy', 'src', src, (srcOffset + n) * F); d.need('copy', 'dst', dst, (dstOffset + n) * F);
    flat(d, 'copy', 'copy', n, params().u(n).f(0).f(0).u(0).u(0).u(srcOffset).u(dstOffset), [src], [dst]);
  },
};
