// Times the non-GEMM webgpu ops on lavapipe with timestamp queries: median of 5 after a warm-up.
// usage (after `npx tsc`): node scripts/wgsl/ops-timing.mjs
import { openBackend } from '../../dist/backend/registry.js';
const be = await openBackend('webgpu');
const only = process.argv[2];
function buf(n, v = 0.5) { const b = be.alloc(n * 4); be.upload(b, new Float32Array(n).fill(v).map((_, i) => Math.sin(i))); return b; }
async function time(name, bytes, fn) {
  if (only && !name.includes(only)) return;
  fn(); await be.sync();
  const ts = [];
  for (let r = 0; r < 5; r++) ts.push(await be.timeOnDevice(fn));
  ts.sort((a, b) => a - b);
  const med = ts[2];
  console.log(`${name.padEnd(58)} ${(med * 1e3).toFixed(2).padStart(8)} ms  (min ${(ts[0] * 1e3).toFixed(2)}, max ${(ts[4] * 1e3).toFixed(2)})  ${(bytes / med / 1e9).toFixed(2)} GB/s`);
}
function pool(n, c, h, w, kh, kw, s, pad, inc = true) {
  const p = Math.floor((h + 2 * pad - kh) / s) + 1, q = Math.floor((w + 2 * pad - kw) / s) + 1;
  return { n, c, h, w, kh, kw, strideH: s, strideW: s, padH: pad, padW: pad, p, q, countIncludePad: inc };
}
for (const pp of [pool(32, 64, 32, 32, 2, 2, 2, 0), pool(32, 64, 56, 56, 3, 3, 2, 1), pool(128, 512, 4, 4, 4, 4, 4, 0), pool(128, 512, 7, 7, 7, 7, 7, 0), pool(32, 256, 8, 8, 8, 8, 8, 0), pool(32, 64, 32, 32, 32, 32, 32, 0)]) {
  const nx = pp.n * pp.c * pp.h * pp.w, ny = pp.n * pp.c * pp.p * pp.q;
  const x = buf(nx), y = buf(ny), am = be.alloc(ny * 4), dx = buf(nx);
  const tag = `${pp.n}x${pp.c}x${pp.h}x${pp.w} k${pp.kh} s${pp.strideH} p${pp.padH}`;
  if (pp.kh < 5) {
    await time(`maxpool2dFwd ${tag}`, (nx + 2 * ny) * 4, () => be.maxpool2dFwd(pp, x, y, am));
    await time(`maxpool2dBwd ${tag}`, (nx + 2 * ny) * 4, () => be.maxpool2dBwd(pp, y, am, dx));
  }
  await time(`avgpool2dFwd ${tag}`, (nx + ny) * 4, () => be.avgpool2dFwd(pp, x, y));
  await time(`avgpool2dBwd ${tag}`, (nx + ny) * 4, () => be.avgpool2dBwd(pp, y, dx));
  for (const b of [x, y, am, dx]) be.free(b);
}
{
  const [o, c, i] = [128, 64, 32 * 32];
  const dy = buf(o * c * i), db = buf(c);
  await time(`biasGrad ${o}x${c}x${i}`, o * c * i * 4, () => be.biasGrad(o, c, i, dy, db));
  await time(`biasGrad rows 128x4096`, 128 * 4096 * 4, () => be.biasGrad(128, 4096, 1, dy, buf(4096)));
  const out = be.alloc(16);
  await time(`sumsqCheck n=${o * c * i}`, o * c * i * 4, () => be.sumsqCheck(o * c * i, dy, out));
  const m = buf(o * c * i), y = buf(o * c * i);
  await time(`dropoutFwd n=${o * c * i}`, 3 * o * c * i * 4, () => be.dropoutFwd(o * c * i, 0.5, 1234, dy, m, y));
  const g = buf(o * c * i), v = buf(o * c * i);
  await time(`sgdUpdate n=${o * c * i}`, 5 * o * c * i * 4, () => be.sgdUpdate(o * c * i, 0.1, 0.9, 5e-4, true, m, g, v));
  const gm = buf(c), bt = buf(c), sm = buf(c), si = buf(c), rm = buf(c), rv = buf(c, 1), dg = buf(c), dbb = buf(c);
  await time(`bn train fwd ${o}x${c}x${i}`, 3 * o * c * i * 4, () => be.batchnorm2dFwdTrain(o, c, i, 1e-5, 0.1, dy, gm, bt, y, sm, si, rm, rv));
  await time(`bn eval fwd ${o}x${c}x${i}`, 2 * o * c * i * 4, () => be.batchnorm2dFwdEval(o, c, i, 1e-5, dy, gm, bt, rm, rv, y));
  await time(`bn bwd ${o}x${c}x${i}`, 5 * o * c * i * 4, () => be.batchnorm2dBwd(o, c, i, dy, g, gm, sm, si, m, dg, dbb));
  const sc = buf(o * c * i);
  await time(`lrn fwd ${o}x${c}x${i} r2`, 3 * o * c * i * 4, () => be.lrnFwd(o, c, i, 2, 2, 1e-4, 0.75, dy, y, sc));
  await time(`lrn bwd ${o}x${c}x${i} r2`, 5 * o * c * i * 4, () => be.lrnBwd(o, c, i, 2, 2, 1e-4, 0.75, dy, y, sc, g, m));
  const N = 128, C = 1000, lg = buf(N * C), lab = be.alloc(N * 4); be.upload(lab, new Int32Array(N).fill(3));
  const pr = buf(N * C), ls = buf(N), dl = buf(N * C);
  await time(`softmaxXentFwd ${N}x${C}`, 2 * N * C * 4, () => be.softmaxXentFwd(N, C, 0.1, lg, lab, pr, ls));
  await time(`softmaxXentFwd ${N}x10`, 2 * N * 10 * 4, () => be.softmaxXentFwd(N, 10, 0.1, lg, lab, pr, ls));
  await time(`softmaxXentBwd ${N}x${C}`, 2 * N * C * 4, () => be.softmaxXentBwd(N, C, 0.1, 1 / N, pr, lab, dl));
}
process.exit(0);
