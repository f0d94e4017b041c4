// Glue for kernels/wgsl/dropout.wgsl: inverted dropout with the CPU kernel's counter-based
// mask. The seed (a JS integer up to 2^53) travels as two u32 words; keep_scale = 1/(1-p) is
// rounded to float32 here exactly as the CPU kernel rounds it (1.f / (1.f - p)). Chunked like the
// flat ops when a buffer is too large to bind whole; the kernel hashes the global index.
import type { OpImpls } from './index.js';
import { params } from '../runtime.js';
import { flatChunks } from './chunk.js';
import { F, dim, distinct, fail, finite, fitsU32, index } from './args.js';

const WG = 256;

export const dropoutOps: Partial<OpImpls> = {
  dropoutFwd(d, n, p, seed, x, mask, y) {
    const op = 'dropoutFwd';
    dim(op, 'n', n);
    fitsU32(op, 'n', n + 1);
    finite(op, 'p', p);
    if (p < 0 || p > 1) fail(op, `p must be in [0, 1], got ${p}`);
    index(op, 'seed', seed);
    d.need(op, 'x', x, n * F); d.need(op, 'mask', mask, n * F); d.need(op, 'y', y, n * F);
    distinct(op, mask, 'mask', y, 'y');
    const pf = Math.fround(p);
    // Each float32 operation done in double and rounded to float32 gives the float32 result
    // (double has more than twice float32's precision), so this is the CPU's 1.f / (1.f - p).
    const keepScale = pf < 1 ? Math.fround(1 / Math.fround(1 - pf)) : 0;
    const lo = seed % 2 ** 32, hi = Math.floor(seed / 2 ** 32);
    flatChunks(d, op, n, [x, mask, y], (bind, off, len) => {
      const prm = params().u(len).f(pf).f(keepScale).u(lo).u(hi).u(off);
      d.dispatch(op, { file: 'dropout.wgsl', entry: 'dropout_fwd' }, prm, [bind(x)], [bind(mask), bind(y)], d.grid(len, WG));
    });
  },
};
