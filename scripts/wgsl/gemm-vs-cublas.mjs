// The WebGPU issue's figure: the WGSL SGEMM beside cuBLAS fp32 from the same session.
// Reads the JSONL records of `imagerate bench gemm --backend webgpu [--variants ...]` and of
// bench/baselines/pytorch_gpu.py, and prints per square size (GFLOP/s of the median time): the
// best WGSL record with Dawn's default robustness and, apart, the best with it off (a
// measurement of what the bounds clamps cost, not a configuration to ship), each plain
// Backend.gemm record (the default variant or IMAGERATE_WEBGPU_GEMM's), cuBLAS fp32 (torch.mm,
// TF32 off; the latest record), and the ratios against the goal of >= 50 %. Only numbers found
// in the files are printed.
// usage: node scripts/wgsl/gemm-vs-cublas.mjs PYTORCH.jsonl WEBGPU.jsonl...
import { existsSync, readFileSync } from 'node:fs';

const [cublasFile, ...webgpuFiles] = process.argv.slice(2);
if (!cublasFile || webgpuFiles.length === 0) {
  console.error('usage: node scripts/wgsl/gemm-vs-cublas.mjs PYTORCH.jsonl WEBGPU.jsonl...');
  process.exit(3);
}
const read = (f) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)) : []);
const isSgemm = (r) => r.kind === 'kernel' && r.name === 'sgemm' && r.precision === 'fp32' && r.shape?.m === r.shape?.n && r.shape?.n === r.shape?.k;
const cublas = read(cublasFile).filter((r) => isSgemm(r) && r.framework !== null);
const ours = webgpuFiles.flatMap(read).filter((r) => isSgemm(r) && r.backend === 'webgpu' && r.framework === null);
const label = (r) => r.shape.variant ?? /gemm\.wgsl variant ([0-9a-z_]+)/.exec(r.notes)?.[1] ?? 'variant not recorded';
const gf = (x) => x.toFixed(x >= 100 ? 0 : 1);
const fmt = (r) => `${gf(r.gflops)} GFLOP/s (${label(r)}; dawn options: ${r.notes.match(/dawn options: ([^;]*)/)?.[1] ?? 'not recorded'})`;
const sizes = [...new Set(ours.map((r) => r.shape.n))].sort((a, b) => b - a);
if (sizes.length === 0) console.log(`no webgpu sgemm records in ${webgpuFiles.join(', ')}`);
const unsafe = (r) => /disable_robustness/.test(r.notes);
for (const n of sizes) {
  const mine = ours.filter((r) => r.shape.n === n).sort((a, b) => b.gflops - a.gflops);
  // The latest cuBLAS fp32 record at this size (TF32 off: precision fp32).
  const lib = cublas.filter((r) => r.shape.n === n).sort((a, b) => (a.date < b.date ? 1 : -1))[0];
  console.log(`${n}^3:`);
  // The best with Dawn's defaults (robustness on) is the figure; robustness off is a measurement of its cost.
  const best = [mine.find((r) => !unsafe(r)), mine.find(unsafe)].filter(Boolean);
  for (const r of best) console.log(`  best WGSL${unsafe(r) ? ' (robustness off)' : ''}: ${fmt(r)}`);
  // Records of the plain bench (no variant in the shape): what Backend.gemm runs, by default
  // or with IMAGERATE_WEBGPU_GEMM (quoted in the notes).
  for (const r of mine.filter((x) => !x.shape.variant)) console.log(`  Backend.gemm: ${fmt(r)}${/IMAGERATE_WEBGPU_GEMM=/.test(r.notes) ? ' [IMAGERATE_WEBGPU_GEMM]' : ''}`);
  if (!lib) {
    console.log(`  cuBLAS fp32: no record at ${n}^3 in ${cublasFile}`);
    continue;
  }
  console.log(`  cuBLAS fp32: ${gf(lib.gflops)} GFLOP/s (${lib.framework}; ${lib.notes})`);
  for (const r of best) {
    const pct = (100 * r.gflops) / lib.gflops;
    console.log(`  best WGSL${unsafe(r) ? ' (robustness off)' : ''} / cuBLAS fp32: ${pct.toFixed(1)} % (goal >= 50 %: ${pct >= 50 ? 'met' : 'not met'})`);
  }
}
