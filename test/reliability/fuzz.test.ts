// Malformed files, per loader (docs/reliability.md, "Malformed files"): a few hundred mutants
// of a small valid file each, with a fixed seed, read through the loader's public entry point.
// Each must be accepted or end in an ImagerateDataError naming the file: never another error,
// a crash, a case over CASE_TIME_LIMIT_MS, or memory growth over MEMORY_LIMIT_MB.
// The longer run of the same generators: scripts/fuzz-long.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { decodeImage, loadSharp } from '../../src/data/decode.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/util/rng.js';
import { getBackend } from '../../src/backend/registry.js';
import { getModelSpec } from '../../src/models/index.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import {
  type FuzzStats, type FuzzTarget, checkpointTarget, cifarTarget, idxTarget, imageTargets, packTarget, runFuzz, safetensorsTarget,
} from './fuzz-cases.js';

const SEED = 20261123;
const MEMORY_LIMIT_MB = 200;
/** Cases per loader in CI (the whole file stays under ~30 s on a busy 2-core machine). */
const CASES: Record<string, number> = {
  idx: 1500, 'idx-gzip': 1500, 'cifar-binary': 1000, pack: 1500, safetensors: 1500, checkpoint: 800, jpeg: 800, png: 800,
};

describe('fuzzing the file loaders', () => {
  let dir: string;
  const targets = new Map<string, FuzzTarget>();
  const all: FuzzStats[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'imagerate-fuzz-'));
    const rng = new Rng(SEED, 'bases');
    for (const t of [idxTarget(rng, false), idxTarget(rng, true), cifarTarget(rng), packTarget(rng, dir), safetensorsTarget(rng), ...await imageTargets(rng)]) {
      targets.set(t.name, t);
    }
    const be = getBackend('cpu');
    const spec = getModelSpec('lenet5');
    const model = spec.build(be, 1);
    const file = join(dir, 'base-checkpoint.safetensors');
    await saveCheckpoint(file, {
      modelName: 'lenet5', module: model, buildOpts: { numClasses: 10, inputSize: 28 }, inputShape: spec.input, classNames: '0123456789'.split(''),
      normalisation: { mean: [0.13], std: [0.31] }, transform: 'mnist', epoch: 1, step: 10, seed: 1, bestTop1: 0.5,
    });
    model.dispose();
    targets.set('checkpoint', checkpointTarget(new Uint8Array(readFileSync(file))));
  });

  afterAll(async () => {
    for (const t of targets.values()) await t.close?.();
    rmSync(dir, { recursive: true, force: true });
    // The counts, in CI output.
    for (const s of all) {
      console.log(`fuzz ${s.target}: ${s.cases} cases (${s.rejected} rejected with a data error, ${s.accepted} accepted), ` +
        `slowest ${s.maxCaseMs.toFixed(0)} ms, largest rss jump in one case ${s.maxCaseRssMB.toFixed(0)} MB, rss +${s.maxRssGrowthMB.toFixed(0)} MB over the run, arrayBuffers +${s.maxArrayBuffersGrowthMB.toFixed(0)} MB`);
    }
    console.log(`fuzz total: ${all.reduce((a, s) => a + s.cases, 0)} cases, seed ${SEED}`);
  });

  it('the image size check refuses no real file: flat-colour images near the compression limits still decode', async () => {
    // A palette PNG of one colour is within 10 % of deflate's limit (raw/file 1004 of 1100 allowed);
    // a mozjpeg flat grey JPEG holds 333 pixels a byte (1024 allowed).
    const sharp = await loadSharp();
    const flat = sharp({ create: { width: 2048, height: 2048, channels: 3, background: { r: 128, g: 128, b: 128 } } });
    for (const [name, bytes] of [['flat.png', await flat.clone().png({ compressionLevel: 9, palette: true }).toBuffer()],
      ['flat.jpg', await flat.clone().jpeg({ mozjpeg: true }).toBuffer()]] as const) {
      const file = join(dir, name);
      writeFileSync(file, bytes);
      const img = await decodeImage(file, { channels: 3, resize: { mode: 'shorter', size: 32 } });
      expect([img.w, img.h], name).toEqual([32, 32]);
    }
  });

  for (const [name, cases] of Object.entries(CASES)) {
    it(`${name}: ${cases} mutants end in a data error naming the file (or load), within time and memory bounds`, async () => {
      const s = await runFuzz(targets.get(name)!, cases, SEED, join(dir, name), MEMORY_LIMIT_MB);
      all.push(s);
      expect(s.failures.slice(0, 5)).toEqual([]);
      expect(s.cases).toBe(cases);
      expect(s.rejected).toBeGreaterThan(cases / 4); // the mutations do reach the checks
      expect(s.maxCaseRssMB, s.maxRssCase).toBeLessThan(MEMORY_LIMIT_MB);
      expect(s.maxRssGrowthMB).toBeLessThan(MEMORY_LIMIT_MB);
      expect(s.maxArrayBuffersGrowthMB).toBeLessThan(MEMORY_LIMIT_MB);
    }, 60_000);
  }
});
