// Glue for kernels/wgsl/pointwise.wgsl: bias add, ReLU, add/mul/axpby/scale/fill/copy. The flat
// ops run in chunks of views when a buffer is too large to bind whole (chunk.ts).
import type { OpImpls } from './index.js';
import type { BufferHandle } from '../../backend.js';
import { Dispatcher, Params, params } from '../runtime.js';
import { chunkElements, flatChunks, viewOf } from './chunk.js';

const FILE = 'pointwise.wgsl';
const WG = 256;
const F = 4;

/** One flat op over n elements, chunked when a buffer is too large to bind whole (chunk.ts). */
function flat(d: Dispatcher, op: string, entry: string, n: number, prm: (len: number) => Params, reads: BufferHandle[], writes: BufferHandle[]): void {
  flatChunks(d, op, n, [...reads, ...writes], (bind, _off, len) => {
    d.dispatch(op, { file: FILE, entry }, prm(len), reads.map(bind), writes.map(bind), d.grid(len, WG));
  });
}

export const pointwiseOps: Partial<OpImpls> = {
  biasAdd(d, outer, ch, inner, x, b, y) {
    // Activations: bound whole (the dispatcher refuses a buffer past the binding limit).
    const n = outer * ch * inner;
    d.need('biasAdd', 'x', x, n * F); d.need('biasAdd', 'b', b, ch * F); d.need('biasAdd', 'y', y, n * F);
    if (n === 0) return;
    d.dispatch('biasAdd', { file: FILE, entry: 'bias_add' }, params().u(n).f(0).f(0).u(ch).u(inner), [x, b], [y], d.grid(n, WG));
  },
  reluFwd(d, n, x, y) {
    d.need('reluFwd', 'x', x, n * F); d.need('reluFwd', 'y', y, n * F);
    flat(d, 'reluFwd', 'relu_fwd', n, (len) => params().u(len), [x], [y]);
  },
  reluBwd(d, n, y, dy, dx) {
    d.need('reluBwd', 'y', y, n * F); d.need('reluBwd', 'dy', dy, n * F); d.need('reluBwd', 'dx', dx, n * F);
    flat(d, 'reluBwd', 'relu_bwd', n, (len) => params().u(len), [y, dy], [dx]);
  },
  add(d, n, a, b, y) {
    d.need('add', 'a', a, n * F); d.need('add', 'b', b, n * F); d.need('add', 'y', y, n * F);
    flat(d, 'add', 'add', n, (len) => params().u(len), [a, b], [y]);
  },
  mul(d, n, a, b, y) {
    d.need('mul', 'a', a, n * F); d.need('mul', 'b', b, n * F); d.need('mul', 'y', y, n * F);
    flat(d, 'mul', 'mul', n, (len) => params().u(len), [a, b], [y]);
  },
  axpby(d, n, alpha, x, beta, y) {
    d.need('axpby', 'x', x, n * F); d.need('axpby', 'y', y, n * F);
    flat(d, 'axpby', 'axpby', n, (len) => params().u(len).f(alpha).f(beta), [x], [y]);
  },
  scale(d, n, alpha, x, y) {
    d.need('scale', 'x', x, n * F); d.need('scale', 'y', y, n * F);
    flat(d, 'scale', 'scale', n, (len) => params().u(len).f(alpha), [x], [y]);
  },
  fill(d, n, value, y) {
    d.need('fill', 'y', y, n * F);
    flat(d, 'fill', 'fill', n, (len) => params().u(len).f(value), [], [y]);
  },
  copy(d, n, src, srcOffset, dst, dstOffset) {
    const op = 'copy';
    d.need(op, 'src', src, (srcOffset + n) * F); d.need(op, 'dst', dst, (dstOffset + n) * F);
    if (n === 0) return;
    const kernel = { file: FILE, entry: 'copy' };
    const prm = (len: number, so: number, dOff: number) => params().u(len).f(0).f(0).u(0).u(0).u(so).u(dOff);
    if (d.bindable(src) && d.bindable(dst)) {
      d.dispatch(op, kernel, prm(n, srcOffset, dstOffset), [src], [dst], d.grid(n, WG));
      return;
    }
    // Each side's view starts at its range rounded down to the alignment: one alignment less per chunk.
    const step = chunkElements(d) - d.viewAlign;
    for (let off = 0; off < n; off += step) {
      const len = Math.min(step, n - off);
      const s = viewOf(d, op, src, srcOffset + off, len);
      const t = viewOf(d, op, dst, dstOffset + off, len);
      d.dispatch(op, kernel, prm(len, s.skip, t.skip), [s.view], [t.view], d.grid(len, WG));
    }
  },
};
