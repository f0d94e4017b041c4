// first-losses.mjs BACKEND PRECISION [STEPS] [MODEL]: the first STEPS (default 4) training
// losses of MODEL (default lenet5) with the default recipe on the embedded MNIST split, one
// line, for comparing backends and precisions step by step (run `npx tsc` first):
//   node scripts/first-losses.mjs cpu fp32
//   IMAGERATE_CUDA_ADDON=build-cuda-emu/Release/imagerate_cuda_emu.node node scripts/first-losses.mjs cuda fp16
import { fileURLToPath } from 'node:url';

const [backend = 'cpu', precision = 'fp32', steps = '4', model = 'lenet5'] = process.argv.slice(2);
const n = Number(steps);
const { runTraining, TRAIN_DEFAULTS } = await import(fileURLToPath(new URL('../dist/train/run.js', import.meta.url)));
const out = [];
const STOP = 'first-losses: enough steps';
try {
  await runTraining({ ...TRAIN_DEFAULTS, model, backend, precision, epochs: 1, target: null }, {
    onStep: ({ step, loss, lossScale, skipped }) => {
      out.push(`${step}:${loss.toFixed(4)}${skipped ? ' (skipped)' : ''}${lossScale ? ` scale ${lossScale}` : ''}`);
      if (out.length >= n) throw new Error(STOP);
    },
  });
} catch (e) {
  if (e.message !== STOP) throw e;
}
console.log(`${model} ${backend} ${precision}: ${out.join('  ')}`);
process.exit(0);
