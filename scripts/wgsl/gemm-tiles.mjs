// GEMM tile-shape timing on the webgpu backend: device time by timestamp query. The machine is
// shared, so configurations are interleaved and the best of REPS is reported (interference only
// ever slows a run); the median is printed next to it.
// usage: node scripts/wgsl/gemm-tiles.mjs '[{"BM":64,...}]' '[256,512,1024]'
import { openBackend } from '../../dist/backend/registry.js';
import { gemmDispatch, GEMM_TILES } from '../../dist/backend/webgpu/ops/gemm.js';
const be = await openBackend('webgpu');
const tiles = JSON.parse(process.argv[2] ?? JSON.stringify([GEMM_TILES.large]));
const sizes = JSON.parse(process.argv[3] ?? '[256,512,1024]');
const REPS = Number(process.env.REPS ?? 5);
const med = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const name = (t) => `${t.BM}x${t.BN}/${t.BK}/${t.TM}x${t.TN}`;
const res = new Map(tiles.map((t) => [name(t), []]));
for (const s of sizes) {
  const A = Float32Array.from({ length: s * s }, () => Math.random() - 0.5);
  const a = be.alloc(A.byteLength), b = be.alloc(A.byteLength), c = be.alloc(A.byteLength);
  be.upload(a, A); be.upload(b, A);
  const g = { transA: false, transB: false, m: s, n: s, k: s, alpha: 1, beta: 0, lda: s, ldb: s, ldc: s };
  const ts = tiles.map(() => []);
  for (const t of tiles) { gemmDispatch(be.rt, g, a, b, c, t); await be.sync(); }
  for (let r = 0; r < REPS; r++) for (let i = 0; i < tiles.length; i++) ts[i].push(await be.timeOnDevice(() => gemmDispatch(be.rt, g, a, b, c, tiles[i])));
  tiles.forEach((t, i) => res.get(name(t)).push(`${(2 * s ** 3 / Math.min(...ts[i]) / 1e9).toFixed(2)} (${(2 * s ** 3 / med(ts[i]) / 1e9).toFixed(2)})`));
  be.free(a); be.free(b); be.free(c);
}
console.log('tile', sizes.join(' '), ': GFLOP/s best (median)');
for (const [k, v] of res) console.log(k.padEnd(16), v.join('  '));
process.exit(0);
