// Glue for kernels/wgsl/pool.wgsl: max and average pooling, forward and backward. Checks the
// parameter block as the CPU addon does (native/cpu_ops_nn.cc: positive sizes, output extents
// from the floor-mode formula, exact byte needs), then enqueues one dispatch per op.
import type { BufferHandle, Pool2dParams } from '../../backend.js';
import type { OpImpls } from './index.js';
import { Dispatcher, params } from '../runtime.js';
import { F, distinct, fail } from './args.js';

const FILE = 'pool.wgsl';
const WG = 256;

const FIELDS = ['n', 'c', 'h', 'w', 'kh', 'kw', 'strideH', 'strideW', 'padH', 'padW', 'p', 'q'] as const;

function outExtent(size: number, pad: number, k: number, stride: number): number {
  const span = size + 2 * pad - k;
  return span < 0 ? 0 : Math.floor(span / stride) + 1;
}

function checkPool(op: string, pp: Pool2dParams): void {
  for (const f of FIELDS) {
    const v = pp[f];
    const isPad = f === 'padH' || f === 'padW';
    if (typeof v !== 'number' || !Number.isInteger(v)) fail(op, `pp.${f} must be an integer, got ${String(v)}`);
    if (v > 0x7fffffff) fail(op, `pp.${f} is too large: ${v}`);
    if (v < (isPad ? 0 : 1)) fail(op, `pp.${f} must be ${isPad ? 'a non-negative' : 'a positive'} integer, got ${v}`);
  }
  const wantP = outExtent(pp.h, pp.padH, pp.kh, pp.strideH), wantQ = outExtent(pp.w, pp.padW, pp.kw, pp.strideW);
  if (wantP < 1) fail(op, 'window does not fit the padded input along (h + 2*padH - kh)/strideH + 1');
  if (pp.p !== wantP) fail(op, `pp.p is ${pp.p} but (h + 2*padH - kh)/strideH + 1 gives ${wantP}`);
  if (wantQ < 1) fail(op, 'window does not fit the padded input along (w + 2*padW - kw)/strideW + 1');
  if (pp.q !== wantQ) fail(op, `pp.q is ${pp.q} but (w + 2*padW - kw)/strideW + 1 gives ${wantQ}`);
  if (pp.h * pp.w > 0x7fffffff) fail(op, 'h*w must fit in int32 (argmax holds h*W+w indices)');
  if (pp.n * pp.c * Math.max(pp.h * pp.w, pp.p * pp.q) > 0xffffffff) fail(op, 'tensor exceeds the 32-bit index range of the webgpu kernels');
}

function poolParams(pp: Pool2dParams, total: number) {
  return params().u(total).u(pp.h).u(pp.w).u(pp.p).u(pp.q).u(pp.kh).u(pp.kw).u(pp.strideH).u(pp.strideW)
    .u(pp.padH).u(pp.padW).u(pp.countIncludePad ? 1 : 0).f(1 / (pp.kh * pp.kw));
}

function sizes(pp: Pool2dParams): { nx: number; ny: number } {
  return { nx: pp.n * pp.c * pp.h * pp.w, ny: pp.n * pp.c * pp.p * pp.q };
}

function flat(d: Dispatcher, op: string, entry: string, n: number, pp: Pool2dParams, reads: BufferHandle[], writes: BufferHandle[]): void {
  d.dispatch(op, { file: FILE, entry }, poolParams(pp, n), reads, writes, d.grid(n, WG));
}

export const poolOps: Partial<OpImpls> = {
  maxpool2dFwd(d, pp, x, y, argmax) {
    const op = 'maxpool2dFwd';
    checkPool(op, pp);
    const { nx, ny } = sizes(pp);
    d.need(op, 'x', x, nx * F); d.need(op, 'y', y, ny * F); d.need(op, 'argmax', argmax, ny * 4);
    distinct(op, y, 'y', x, 'x'); distinct(op, argmax, 'argmax', x, 'x'); distinct(op, argmax, 'argmax', y, 'y');
    flat(d, op, 'maxpool2d_fwd', ny, pp, [x], [y, argmax]);
  },
  maxpool2dBwd(d, pp, dy, argmax, dx) {
    const op = 'maxpool2dBwd';
    checkPool(op, pp);
    const { nx, ny } = sizes(pp);
    d.need(op, 'dy', dy, ny * F); d.need(op, 'argmax', argmax, ny * 4); d.need(op, 'dx', dx, nx * F);
    distinct(op, dx, 'dx', dy, 'dy'); distinct(op, dx, 'dx', argmax, 'argmax');
    flat(d, op, 'maxpool2d_bwd', nx, pp, [dy, argmax], [dx]);
  },
  avgpool2dFwd(d, pp, x, y) {
    const op = 'avgpool2dFwd';
    checkPool(op, pp);
    const { nx, ny } = sizes(pp);
    d.need(op, 'x', x, nx * F); d.need(op, 'y', y, ny * F);
    distinct(op, y, 'y', x, 'x');
    const planes = pp.n * pp.c;
    // Global pooling (the window is the whole plane): a workgroup reduction per plane, with
    // TPP threads a plane (about 32 values each, a power of two up to a whole workgroup).
    if (pp.kh === pp.h && pp.kw === pp.w && pp.padH === 0 && pp.padW === 0) {
      const tpp = Math.min(WG, 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(pp.h * pp.w / 32)))));
      d.dispatch(op, { file: FILE, entry: 'avgpool2d_global_fwd', defines: { TPP: tpp } }, poolParams(pp, planes), [x], [y],
        d.grid(planes * tpp, WG));
      return;
    }
    flat(d, op, 'avgpool2d_fwd', ny, pp, [x], [y]);
  },
  avgpool2dBwd(d, pp, dy, dx) {
    const op = 'avgpool2dBwd';
    checkPool(op, pp);
    const { nx, ny } = sizes(pp);
    d.need(op, 'dy', dy, ny * F); d.need(op, 'dx', dx, nx * F);
    distinct(op, dx, 'dx', dy, 'dy');
    const global = pp.kh === pp.h && pp.kw === pp.w && pp.padH === 0 && pp.padW === 0;
    flat(d, op, global ? 'avgpool2d_global_bwd' : 'avgpool2d_bwd', nx, pp, [dy], [dx]);
  },
};
