// The HTML report (src/report/html.ts) and the report / compare commands, on two small fixture
// runs of the same benchmarks (test/report/fixtures/run-{a,b}.jsonl, made with
// `bench kernels --suite lenet` and `bench models --model lenet5 --batch 4,16 --profile`).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildReport } from '../../src/report/html.js';
import { headlineMarkdown } from '../../src/report/headlines.js';
import { readRecords } from '../../src/bench/record.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist', 'cli.js');
const A = join(import.meta.dirname, 'fixtures', 'run-a.jsonl');
const B = join(import.meta.dirname, 'fixtures', 'run-b.jsonl');

describe('HTML report', () => {
  const html = buildReport([{ file: A, records: readRecords(A) }]);

  it('is self-contained: Chart.js and the data inline, nothing fetched', () => {
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    expect(html).toMatch(/Chart\.js v4/); // the UMD build's banner
    expect(html.match(/<\/script>/g)!.length).toBe(3);
  });

  it('has the headline figures with their meaning, a model table, and the plots', () => {
    expect(html).toMatch(/training: forward \+ backward \+ SGD update, batch 16, fp32, synthetic data, data loading excluded/);
    expect(html).toMatch(/inference: forward only, eval mode, batch 16, fp32, synthetic data, data loading excluded/);
    expect(html).toMatch(/<canvas id="ips-lenet5-training">/);
    expect(html).toMatch(/<canvas id="ips-lenet5-inference">/);
    expect(html).toMatch(/<canvas id="roofline">/);
    expect(html).toMatch(/<canvas id="layers-0">/);
    expect(html).toMatch(/<th>mode<\/th><th>batch<\/th><th>precision<\/th><th>data<\/th><th>loading<\/th>/);
    expect(html).toMatch(/Columns left empty/);
    expect(html).toMatch(/inference only/);
  });

  it('a file of kernel records only: the model sections say so instead of standing empty', () => {
    const kernelsOnly = readRecords(A).filter((r) => r.kind === 'kernel');
    expect(kernelsOnly.length).toBeGreaterThan(0);
    const k = buildReport([{ file: A, records: kernelsOnly }]);
    expect(k.match(/No model records in these files/g)).toHaveLength(3); // headline, img/s vs batch, model tables
    expect(html).not.toMatch(/No model records in these files/);
    expect(k).toMatch(/<canvas id="roofline">/);
  });

  it('compares two runs and flags figures more than 5 % apart', () => {
    const two = buildReport([{ file: A, records: readRecords(A) }, { file: B, records: readRecords(B) }]);
    expect(two).toMatch(/Run vs run/);
    expect(two).toMatch(/B\/A &gt; 1: B is faster/);
  });

  it('the headline table in Markdown: ours beside each framework, or why the column is empty', () => {
    const md = headlineMarkdown(readRecords(A));
    const lines = md.trim().split('\n');
    expect(lines[0]).toBe('| model | mode | batch | imagerate img/s | onnxruntime-node img/s | pytorch img/s | tfjs-wasm img/s | what one step is |');
    expect(lines.find((l) => l.startsWith('| lenet5 | training | 16 |'))).toMatch(/\| - \(inference only\) \|.*\| training: forward \+ backward \+ SGD update, batch 16/);
    expect(lines.find((l) => l.startsWith('| lenet5 | inference | 16 |'))).toMatch(/ours \d+\.\d\dx/);
  });

  it('`imagerate report` writes the page; `imagerate compare` prints ratios', () => {
    const dir = mkdtempSync(join(tmpdir(), 'imagerate-report-'));
    try {
      const out = join(dir, 'sub', 'r.html');
      const r = spawnSync(process.execPath, [CLI, 'report', A, B, '--html', out], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(out, 'utf8')).toMatch(/Run vs run/);
      const c = spawnSync(process.execPath, [CLI, 'compare', A, B], { encoding: 'utf8', timeout: 60_000 });
      expect(c.status, c.stderr).toBe(0);
      expect(c.stdout).toMatch(/^A: .*run-a\.jsonl: /);
      expect(c.stdout).toMatch(/lenet5 training b16 fp32 synthetic\/compute\s+img\/s\s+\d+\s+\d+\s+\d+\.\d\dx/);
      expect(c.stdout).toMatch(/figures in both/);
      const bad = spawnSync(process.execPath, [CLI, 'compare', A, join(dir, 'none.jsonl')], { encoding: 'utf8', timeout: 60_000 });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/none\.jsonl: no such file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
