// Glue for kernels/wgsl/reduce.wgsl: biasGrad (one workgroup per channel, or one thread per
// column for [rows, cols]) and sumsqCheck (a workgroup per 8192-value chunk, then one final
// workgroup that writes the two float64 results as bit patterns; an x too large to bind whole
// is reduced in chunks of views).
import type { OpImpls } from './index.js';
import { params } from '../runtime.js';
import { chunkElements, flatChunks } from './chunk.js';
import { F, dim, distinct, fitsU32 } from './args.js';

const FILE = 'reduce.wgsl';
const WG = 256;
const CHUNK = 8192; // must equal CHUNK in reduce.wgsl

export const reduceOps: Partial<OpImpls> = {
  biasGrad(d, outer, ch, inner, dy, db) {
    const op = 'biasGrad';
    dim(op, 'outer', outer); dim(op, 'ch', ch); dim(op, 'inner', inner);
    const n = fitsU32(op, 'outer*ch*inner', outer * ch * inner);
    d.need(op, 'dy', dy, n * F); d.need(op, 'db', db, ch * F);
    distinct(op, db, 'db', dy, 'dy');
    const p = params().u(outer).u(ch).u(inner).u(Math.floor(WG / inner)).u(WG % inner);
    if (inner === 1) {
      d.dispatch(op, { file: FILE, entry: 'bias_grad_rows' }, p, [dy], [db], d.grid(ch, WG));
    } else {
      d.dispatch(op, { file: FILE, entry: 'bias_grad' }, p, [dy], [db], d.grid(ch * WG, WG));
    }
  },
  sumsqCheck(d, n, x, out) {
    const op = 'sumsqCheck';
    dim(op, 'n', n);
    fitsU32(op, 'n', n);
    d.need(op, 'x', x, n * F); d.need(op, 'out', out, 16);
    distinct(op, out, 'out', x, 'x');
    // A too-large x is reduced a chunk of views at a time (a multiple of CHUNK values where one
    // fits a binding, so the partials, and the total, are those of one dispatch); every chunk
    // writes its partials after the previous chunk's, and one final pass folds them all.
    const step = d.bindable(x) ? n : chunkElements(d, CHUNK);
    let groups = 0;
    for (let off = 0; off < n; off += step) groups += Math.ceil(Math.min(step, n - off) / CHUNK);
    const part = d.alloc(groups * 4 * 4); // per chunk: scaled sum, #NaN, #inf, scale (reduce.wgsl)
    let base = 0;
    flatChunks(d, op, n, [x], (bind, _off, len) => {
      const g = Math.ceil(len / CHUNK);
      d.dispatch(op, { file: FILE, entry: 'sumsq_partial' }, params().u(len).u(base), [bind(x)], [part], d.grid(g * WG, WG));
      base += g;
    }, CHUNK);
    d.dispatch(op, { file: FILE, entry: 'sumsq_final' }, params().u(groups), [part], [out], [1]);
    d.free(part);
  },
};
