// The long fuzz run: the generators of test/reliability/fuzz-cases.ts (which CI runs a few
// thousand times in test/reliability/fuzz.test.ts) for as many cases per loader as asked.
//
//   npx tsc --ignoreConfig --outDir build/fuzz-long --rootDir . --module nodenext --moduleResolution nodenext \
//     --target es2022 --strict --skipLibCheck --types node scripts/fuzz-long.ts
//   node build/fuzz-long/scripts/fuzz-long.js [cases per loader = 20000] [seed] [loader,loader...]
//
// It prints one line per loader (cases, rejected, accepted, slowest case, memory growth) and
// every failure with its seed and case number (rerun one by giving the same seed), and exits
// with status 1 when any case failed. Run it on a quiet machine: it keeps one core busy.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/util/rng.js';
import { getBackend } from '../src/backend/registry.js';
import { getModelSpec } from '../src/models/index.js';
import { saveCheckpoint } from '../src/train/checkpoint.js';
import {
  type FuzzTarget, checkpointTarget, cifarTarget, idxTarget, imageTargets, packTarget, runFuzz, safetensorsTarget,
} from '../test/reliability/fuzz-cases.js';

async function main(): Promise<number> {
  const cases = Number(process.argv[2] ?? 20000);
  const seed = Number(process.argv[3] ?? Date.now() % 2 ** 31);
  const only = process.argv[4]?.split(',');
  if (!Number.isInteger(cases) || cases < 1 || !Number.isInteger(seed)) {
    console.error('usage: fuzz-long.js [cases per loader] [seed] [loader,...]');
    return 2;
  }
  const dir = mkdtempSync(join(tmpdir(), 'imagerate-fuzz-long-'));
  const rng = new Rng(seed, 'bases');
  const targets: FuzzTarget[] = [idxTarget(rng, false), idxTarget(rng, true), cifarTarget(rng), packTarget(rng, dir), safetensorsTarget(rng), ...await imageTargets(rng)];
  try {
    const spec = getModelSpec('lenet5');
    const model = spec.build(getBackend('cpu'), 1);
    const file = join(dir, 'base-checkpoint.safetensors');
    await saveCheckpoint(file, {
      modelName: 'lenet5', module: model, buildOpts: { numClasses: 10, inputSize: 28 }, inputShape: spec.input, classNames: '0123456789'.split(''),
      normalisation: { mean: [0.13], std: [0.31] }, transform: 'mnist', epoch: 1, step: 10, seed: 1, bestTop1: 0.5,
    });
    model.dispose();
    targets.push(checkpointTarget(new Uint8Array(readFileSync(file))));
  } catch (e) {
    console.log(`checkpoint: skipped (${(e as Error).message})`);
  }
  let failed = 0;
  console.log(`fuzz-long: ${cases} cases per loader, seed ${seed}`);
  for (const t of targets) {
    if (only && !only.includes(t.name)) continue;
    const t0 = performance.now();
    const s = await runFuzz(t, cases, seed, join(dir, t.name));
    console.log(`fuzz ${s.target}: ${s.cases} cases (${s.rejected} rejected with a data error, ${s.accepted} accepted), ` +
      `slowest ${s.maxCaseMs.toFixed(0)} ms, largest rss jump in one case ${s.maxCaseRssMB.toFixed(0)} MB (${s.maxRssCase}), rss +${s.maxRssGrowthMB.toFixed(0)} MB over the run, ` +
      `arrayBuffers +${s.maxArrayBuffersGrowthMB.toFixed(0)} MB, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const f of s.failures) console.log(`  FAIL ${f}`);
    failed += s.failures.length;
  }
  for (const t of targets) await t.close?.();
  rmSync(dir, { recursive: true, force: true });
  console.log(failed ? `${failed} failures` : 'no failures');
  return failed ? 1 : 0;
}

main().then((rc) => { process.exitCode = rc; }, (e: unknown) => { console.error(e); process.exitCode = 1; });
