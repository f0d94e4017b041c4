// Glue for kernels/wgsl/softmax_xent.wgsl: softmax cross-entropy forward (a thread per row for
// C <= 64, a workgroup per row above) and backward (a thread per element). Checks follow
// native/cpu_ops_pointwise.cc. A label outside [0, C) cannot be seen before the kernel runs
// (labels live on the device): the kernels write NaN for its row and count it in a fault slot,
// so the next sync or download rejects naming the op, C, the number of bad rows, the first of
// them and the range of the bad labels (labelFault()).
import type { OpImpls } from './index.js';
import { Dispatcher, params } from '../runtime.js';
import { F, dim, distinct, fail, finite, fitsU32 } from './args.js';

const FILE = 'softmax_xent.wgsl';

/**
 * The fault slot of a loss dispatch over C classes (Dispatcher.fault()); the kernels keep the
 * largest bad label in word 2 and the smallest in word 3, as max(key) and max(~key) with
 * key = label ^ 0x80000000 (softmax_xent.wgsl). The message is the CPU kernel's for one bad
 * label, `label 12 at row 1 is outside [0, 10)`, and for several
 * `3 labels are outside [0, 10), the first at row 1 (labels from -1 to 12)`.
 */
function labelFault(d: Dispatcher, op: string, c: number) {
  return d.fault(op, `C ${c}`, ({ count, first, words }) => {
    const hi = (words[2] ^ 0x80000000) | 0, lo = (words[3] ^ 0x7fffffff) | 0;
    if (count === 1) return `label ${lo} at row ${first} is outside [0, ${c})`;
    return `${count} labels are outside [0, ${c}), the first at row ${first} (${lo === hi ? `all ${lo}` : `labels from ${lo} to ${hi}`})`;
  });
}
const WG = 256;
const ROWS_WG = 64;
/** Above this many classes a row gets a workgroup (tree reductions) instead of a thread. */
const ROW_THREAD_MAX_C = 64;

function lossArgs(op: string, n: number, c: number, eps: number): number {
  dim(op, 'n', n); dim(op, 'c', c);
  finite(op, 'eps', eps);
  if (eps < 0 || eps > 1) fail(op, `eps must be in [0, 1], got ${eps}`);
  if (c > 0x7fffffff) fail(op, 'c must fit in int32 (labels are int32)');
  return fitsU32(op, 'n*c', n * c);
}

export const lossOps: Partial<OpImpls> = {
  softmaxXentFwd(d, n, c, eps, logits, labels, probs, loss) {
    const op = 'softmaxXentFwd';
    const nc = lossArgs(op, n, c, eps);
    d.need(op, 'logits', logits, nc * F); d.need(op, 'labels', labels, n * 4);
    d.need(op, 'probs', probs, nc * F); d.need(op, 'loss', loss, n * F);
    distinct(op, probs, 'probs', labels, 'labels'); distinct(op, loss, 'loss', logits, 'logits');
    distinct(op, loss, 'loss', labels, 'labels'); distinct(op, loss, 'loss', probs, 'probs');
    const p = params().u(n).u(c).f(eps);
    if (c <= ROW_THREAD_MAX_C) {
      d.dispatch(op, { file: FILE, entry: 'xent_fwd_rows' }, p, [logits, labels], [probs, loss, labelFault(d, op, c)], d.grid(n, ROWS_WG));
    } else {
      d.dispatch(op, { file: FILE, entry: 'xent_fwd_wg' }, p, [logits, labels], [probs, loss, labelFault(d, op, c)], d.grid(n * WG, WG));
    }
  },
  softmaxXentBwd(d, n, c, eps, scale, probs, labels, dlogits) {
    const op = 'softmaxXentBwd';
    const nc = lossArgs(op, n, c, eps);
    finite(op, 'scale', scale);
    d.need(op, 'probs', probs, nc * F); d.need(op, 'labels', labels, n * 4); d.need(op, 'dlogits', dlogits, nc * F);
    distinct(op, dlogits, 'dlogits', labels, 'labels');
    // t_ij as the CPU kernel rounds them (float32): off = eps / C, on = (1 - eps) + off.
    const e = Math.fround(eps);
    const off = Math.fround(e / Math.fround(c));
    const on = Math.fround(Math.fround(1 - e) + off);
    const p = params().u(nc).u(c).f(eps).f(scale).f(on).f(off);
    d.dispatch(op, { file: FILE, entry: 'xent_bwd' }, p, [probs, labels], [dlogits, labelFault(d, op, c)], d.grid(nc, WG));
  },
};
