// `imagerate predict --checkpoint <file> <image...>`: classify image files with a trained
// checkpoint. This path is separate from training: the model is built from the checkpoint's
// model name and options, its weights and buffers restored, and it runs in eval mode under
// noGrad, with no optimiser. Each image is prepared as the checkpoint says (input shape,
// normalisation, evaluation transform) by the data layer's loadImageForEval.
//
// Output: for each image, a table of the top-k classes with their softmax probabilities.
// With --json, JSON Lines: one object per image, in the order given, on its own stdout line:
//   {"image": "<path as given>", "top": [{"rank": 1, "class": "7", "index": 7, "probability": 0.998}, ...]}
// Errors (missing or corrupt image, missing or corrupt checkpoint, a model this imagerate does
// not know) are one line each, naming the file or model; nothing is printed for any image then.
import { Command } from 'commander';
import Table from 'cli-table3';
import { openBackend } from '../backend/registry.js';
import { MODELS, type ModelSpec } from '../models/index.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor.js';
import { tidy } from '../autograd/scope.js';
import { noGrad } from '../autograd/tape.js';
import { loadImageForEval } from '../data/image.js';
import { TRANSFORM_NAMES, type TransformName } from '../data/transforms.js';
import { type Checkpoint, loadCheckpoint, restoreModel } from '../train/checkpoint.js';
import { UserError } from '../util/errors.js';
import { parseNumber, parseCount } from './args.js';

export interface Prediction {
  image: string;
  top: { rank: number; class: string; index: number; probability: number }[];
}

export interface PredictOptions {
  checkpoint: string;
  images: string[];
  top: number;
  backend: string;
  threads?: number;
  /** Images per forward pass. */
  batch?: number;
}

function modelOf(ckpt: Checkpoint): ModelSpec {
  const name = ckpt.meta.model.name;
  const spec = Object.hasOwn(MODELS, name) ? MODELS[name] : undefined;
  if (!spec) {
    throw new UserError(`checkpoint ${ckpt.file} holds model '${name}', which this imagerate does not know (valid: ${Object.keys(MODELS).join(', ')})`);
  }
  if (!(TRANSFORM_NAMES as readonly string[]).includes(ckpt.meta.transform)) {
    throw new UserError(`checkpoint ${ckpt.file}: unknown evaluation transform '${ckpt.meta.transform}' (valid: ${TRANSFORM_NAMES.join(', ')})`);
  }
  return spec;
}

/** Softmax in float64 of one row of logits. */
function softmax(logits: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** Loads the checkpoint and the images, runs the model, returns the top-k per image. */
export async function predict(o: PredictOptions): Promise<Prediction[]> {
  if (!Number.isInteger(o.top) || o.top < 1) throw new UserError(`--top must be a positive integer, got ${o.top}`);
  if (o.images.length === 0) throw new UserError('give at least one image file to classify');
  const ckpt = await loadCheckpoint(o.checkpoint);
  const spec = modelOf(ckpt);
  const { inputShape, normalisation, classNames } = ckpt.meta;
  const transform = ckpt.meta.transform as TransformName;
  // All images are loaded before the model is built: a bad file fails fast, with its name.
  const inputs: Float32Array[] = [];
  for (const file of o.images) inputs.push(await loadImageForEval(file, { shape: inputShape, normalisation, transform }));

  const be = await openBackend(o.backend);
  if (o.threads !== undefined) be.setThreads?.(o.threads);
  let model: Module | null = null;
  try {
    model = spec.build(be, ckpt.meta.seed, ckpt.meta.model.opts);
    restoreModel(model, ckpt, spec.name);
    model.eval();
    const m = model;
    const [C, H, W] = inputShape;
    const per = C * H * W;
    const k = Math.min(o.top, classNames.length);
    const batch = o.batch ?? 32;
    const out: Prediction[] = [];
    for (let s = 0; s < inputs.length; s += batch) {
      const chunk = inputs.slice(s, s + batch);
      const x = new Float32Array(chunk.length * per);
      chunk.forEach((a, i) => x.set(a, i * per));
      const logitsT = noGrad(() => tidy(() => m.forward(Tensor.fromArray(be, [chunk.length, C, H, W], x))));
      const logits = await logitsT.data();
      logitsT.dispose();
      const nc = logits.length / chunk.length;
      for (let i = 0; i < chunk.length; i++) {
        const p = softmax(logits.subarray(i * nc, (i + 1) * nc));
        const order = p.map((_, j) => j).sort((a, b) => p[b] - p[a] || a - b).slice(0, k);
        out.push({
          image: o.images[s + i],
          top: order.map((j, r) => ({ rank: r + 1, class: classNames[j] ?? String(j), index: j, probability: p[j] })),
        });
      }
    }
    return out;
  } finally {
    model?.dispose();
  }
}

function table(p: Prediction): string {
  const t = new Table({
    head: ['rank', 'class', 'probability'], style: { head: [], border: [] }, colAligns: ['right', 'left', 'right'],
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' }, // no rule between rows
  });
  for (const r of p.top) t.push([r.rank, r.class, `${(r.probability * 100).toFixed(2)} %`]);
  return `${p.image}\n${t.toString()}`;
}

export function registerPredictCommand(program: Command): void {
  program
    .command('predict')
    .description('classify image files with a trained checkpoint (top-k classes and probabilities)')
    .argument('<image...>', 'image files (PNG or JPEG)')
    .requiredOption('--checkpoint <file>', 'a checkpoint written by `imagerate train --save`')
    .option('--top <k>', 'how many classes to show per image', parseCount('--top'), 5)
    .option('--backend <name>', 'cpu, cuda or webgpu', 'cpu')
    .option('--threads <n>', 'CPU threads (default: all cores)', parseCount('--threads'))
    .option('--json', 'print JSON Lines: one object per image, {"image", "top": [{"rank", "class", "index", "probability"}]}')
    .action(async (images: string[], o) => {
      const preds = await predict({ checkpoint: o.checkpoint, images, top: o.top, backend: o.backend, threads: o.threads });
      if (o.json) {
        for (const p of preds) process.stdout.write(JSON.stringify(p) + '\n');
      } else {
        process.stdout.write(preds.map(table).join('\n') + '\n');
      }
    });
}
