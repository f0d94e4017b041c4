// conv2d timing on the webgpu backend: forward direct vs implicit GEMM (per tile), backward-data
// and backward-filter per tile. Device time by timestamp query; configurations interleaved, best
// of REPS (the machine is shared: interference only slows a run), median in brackets.
// usage: node scripts/wgsl/conv-algos.mjs [layer names...]
import { openBackend } from '../../dist/backend/registry.js';
import { conv2dFwdDispatch, conv2dBwdDataDispatch, conv2dBwdFilterDispatch, CONV_TILES, convTile, convFwdAlgo, convBwdDataAlgo } from '../../dist/backend/webgpu/ops/conv.js';
const be = await openBackend('webgpu');
const REPS = Number(process.env.REPS ?? 5);
const out = (s, k, st, pd) => Math.floor((s + 2 * pd - (k - 1) - 1) / st) + 1;
function layer(n, c, h, k, r, stride, pad) {
  return { n, c, h, w: h, k, r, s: r, strideH: stride, strideW: stride, padH: pad, padW: pad, dilH: 1, dilW: 1, p: out(h, r, stride, pad), q: out(h, r, stride, pad) };
}
const LAYERS = {
  lenet1: layer(64, 1, 28, 6, 5, 1, 2),
  lenet2: layer(64, 6, 14, 16, 5, 1, 0),
  resnet_l1_3x3_b2: layer(2, 64, 56, 64, 3, 1, 1),
  resnet_l3_3x3_b2: layer(2, 256, 14, 256, 3, 1, 1),
};
const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(LAYERS);
const med = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const T = (t) => `${t.BM}x${t.BN}/${t.TM}x${t.TN}`;
for (const name of names) {
  const cp = LAYERS[name];
  const nx = cp.n * cp.c * cp.h * cp.w, nw = cp.k * cp.c * cp.r * cp.s, ny = cp.n * cp.k * cp.p * cp.q;
  const flops = 2 * cp.n * cp.k * cp.p * cp.q * cp.c * cp.r * cp.s;
  const buf = (n) => { const b = be.alloc(n * 4); be.upload(b, Float32Array.from({ length: n }, () => Math.random() - 0.5)); return b; };
  const x = buf(nx), w = buf(nw), y = buf(ny), bias = buf(cp.k), db = buf(cp.k);
  const cfgs = [];
  for (const kb of [4, 6, 8]) cfgs.push([`fwd direct KB=${kb}`, () => conv2dFwdDispatch(be.rt, cp, x, w, bias, y, { algo: 'direct', kb })]);
  const colTiles = Object.values(CONV_TILES).filter((t) => ((t.BM / t.TM) * (t.BN / t.TN)) % t.BN === 0);
  for (const t of colTiles) cfgs.push([`fwd gemm ${T(t)}`, () => conv2dFwdDispatch(be.rt, cp, x, w, bias, y, { algo: 'gemm', tile: t })]);
  for (const kb of [1, 4, 6, 8]) cfgs.push([`bwd-data direct CB=${kb}`, () => conv2dBwdDataDispatch(be.rt, cp, y, w, x, { algo: 'direct', kb })]);
  for (const t of colTiles) cfgs.push([`bwd-data gemm ${T(t)}`, () => conv2dBwdDataDispatch(be.rt, cp, y, w, x, { algo: 'gemm', tile: t })]);
  for (const t of Object.values(CONV_TILES)) cfgs.push([`bwd-filter gemm ${T(t)} +db`, () => conv2dBwdFilterDispatch(be.rt, cp, x, y, w, db, { tile: t })]);
  for (const [, f] of cfgs) { f(); await be.sync(); }
  const ts = cfgs.map(() => []);
  for (let r = 0; r < REPS; r++) for (let i = 0; i < cfgs.length; i++) ts[i].push(await be.timeOnDevice(cfgs[i][1]));
  console.log(`${name}: n${cp.n} c${cp.c} ${cp.h}x${cp.w} k${cp.k} ${cp.r}x${cp.s} pad ${cp.padH}, ${(flops / 1e9).toFixed(3)} GFLOP; rule: fwd ${convFwdAlgo(cp)}, bwd-data ${convBwdDataAlgo(cp)}, tiles fwd/bf ${T(convTile(cp.k))} bd ${T(convTile(cp.c))}`);
  cfgs.forEach(([label], i) => console.log(`  ${label.padEnd(28)} ${(Math.min(...ts[i]) * 1e3).toFixed(2).padStart(8)} ms (${(med(ts[i]) * 1e3).toFixed(2)})  ${(flops / Math.min(...ts[i]) / 1e9).toFixed(2)} GFLOP/s`));
  for (const b of [x, w, y, bias, db]) be.free(b);
}
process.exit(0);
