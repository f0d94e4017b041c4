// Glue for kernels/wgsl/reduce.wgsl: biasGrad (one workgroup per channel, or one thread per
// column for [rows, cols]) and sumsqCheck (a workgroup per 8192-value chunk, then one final
// workgroup that writes the two float64 results as bit patterns).
import type { OpImpls } from './index.js';
import { params } from '../runtime.js';
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
    const groups = Math.ceil(n / CHUNK);
    const part = d.alloc(groups * 3 * 4);
    d.dispatch(op, { file: FILE, entry: 'sumsq_partial' }, params().u(n), [x], [part], d.grid(groups * WG, WG));
    d.dispatch(op, { file: FILE, entry: 'sumsq_final' }, params().u(groups), [part], [out], [1]);
    d.free(part);
  },
};
