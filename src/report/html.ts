// `imagerate report <files...> --html out.html`: one self-contained HTML page from record files.
//
// No network at view time: Chart.js (MIT licence, npm `chart.js`, its UMD build
// dist/chart.umd.min.js) is inlined in a <script> element, and so are the data. Sections:
//   - the headline figures: per model and mode, our images/s with the sentence that says what
//     it means (mode, batch, precision, data, loading), and every framework column beside it
//     (or why it is empty);
//   - a table per model: every record, with mode/batch/precision/data/loading in every row;
//   - images/s vs batch size, one plot per model and mode, one line per backend + framework;
//   - a roofline of the kernels: arithmetic intensity (FLOPs per compulsory byte) vs achieved
//     GFLOP/s, on log axes, under the peak roof (host.ts cpuPeak) and the bandwidth roof
//     (measured: the 'stream-scale' record, see kernel-bench.ts);
//   - host-side overhead (bench overhead: kernel records of suite 'overhead', timed with
//     Benchmark.js): the empty sync fence, one op's enqueue cost, LeNet-5 at batch 1, as a table;
//   - the per-layer time of one training step (records of kind 'layer'), as stacked bars;
//   - with two or more files: the run-vs-run / machine-vs-machine table (compare.ts), flags
//     for figures that disagree by more than 5 %, and the records' own noisy flags.
// Chart instances stay reachable as Chart.instances (the browser test counts their points).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, basename } from 'node:path';
import { meaning, recordKey, type BenchRecord, type MissingRecord, type ResultLine } from '../bench/record.js';
import { compareRuns, sameMachine, AGREE_WITHIN, type CompareRow } from '../bench/compare.js';

export interface ReportInput {
  file: string;
  records: ResultLine[];
}

export interface ReportOptions {
  title?: string;
}

const require = createRequire(import.meta.url);

/** Chart.js's UMD build, to inline. */
export function chartJsSource(): string {
  // The package's exports hide package.json; its main entry lives in dist/ beside the UMD build.
  const main = require.resolve('chart.js');
  return readFileSync(join(dirname(main), 'chart.umd.min.js'), 'utf8');
}

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const num = (v: number | null | undefined, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '' : v >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(d));
const fwName = (r: { framework: string | null }) => (r.framework ? r.framework.split(' ')[0] : 'imagerate');
const seriesName = (r: BenchRecord, multi: boolean, file: string) =>
  `${fwName(r)} (${r.backend}${r.cudaGraph ? ', CUDA graph' : ''}${r.loading === 'end-to-end' ? `, ${r.data} end-to-end` : r.data !== 'synthetic' ? `, ${r.data}` : ''})${multi ? ` [${file}]` : ''}`;

/** Who ran a square SGEMM, for its roofline point: the WebGPU variant where the sweep timed one, else the threads. */
const sgemmWho = (k: BenchRecord) => (k.shape.variant ? `variant ${String(k.shape.variant)}` : `${k.threads} threads`);

function isModel(r: ResultLine): r is BenchRecord {
  return r.kind === 'model';
}

function hostSummary(records: ResultLine[]): string {
  const r = records.find((x): x is BenchRecord => x.kind !== 'missing' && !!x.host?.cpuModel);
  if (!r) return 'no host information';
  const h = r.host;
  const p = h.cpuPeak;
  return `${esc(h.cpuModel)}, ${h.cores} cores, ${(h.memoryBytes / 2 ** 30).toFixed(0)} GiB, ${esc(h.os)}, Node ${esc(h.node)}${h.gpu ? `, GPU ${esc(h.gpu)}` : ''}; ` +
    `fp32 peak ${p?.gflops ? `${p.gflops.toFixed(1)} GFLOP/s (${esc(p.formula)})` : 'unknown'}; imagerate ${esc(r.imagerate?.version)} (${esc(r.imagerate?.commit ?? 'no commit')}), measured ${esc(r.date.slice(0, 16).replace('T', ' '))} UTC`;
}

function modelTable(records: ResultLine[], multi: boolean, files: Map<ResultLine, string>, noisyKeys: Map<string, string>): string {
  const rows = records.map((r) => {
    const file = multi ? `<td>${esc(files.get(r))}</td>` : '';
    if (r.kind === 'missing') {
      return `<tr class="missing">${file}<td>${esc(r.mode)}</td><td>${r.batch ?? ''}</td><td>${esc(r.precision)}</td><td>${esc(r.data)}</td><td>${esc(r.loading)}</td>` +
        `<td>${esc(r.backend)}</td><td>${esc(r.framework ?? 'imagerate')}</td><td colspan="7">not measured: ${esc(r.reason)}</td></tr>`;
    }
    const t = r.timing;
    const flags = [t.noisy ? `noisy: spread ${(((t.p90Ms - t.p10Ms) / t.medianMs) * 100).toFixed(0)} %` : '', noisyKeys.get(recordKey(r)) ?? ''].filter(Boolean).join('; ');
    return `<tr${flags ? ' class="noisy"' : ''}>${file}<td>${esc(r.mode)}</td><td>${r.batch}</td><td>${esc(r.precision)}</td><td>${esc(r.data)}</td><td>${esc(r.loading)}${r.cudaGraph ? ', CUDA graph' : ''}</td>` +
      `<td>${esc(r.backend)}</td><td>${esc(r.framework ?? 'imagerate')}</td><td>${r.threads ?? ''}</td><td class="n">${num(r.imagesPerSec)}</td>` +
      `<td class="n">${num(t.medianMs, 2)}</td><td class="n">${num(t.p10Ms, 2)}-${num(t.p90Ms, 2)}</td><td class="n">${r.iters}</td>` +
      `<td class="n">${num(r.tflops !== undefined ? r.tflops * 1000 : null, 2)}</td><td class="n">${num(r.pctOfPeak, 1)}</td><td>${esc(flags)}</td></tr>`;
  });
  return `<table><thead><tr>${multi ? '<th>file</th>' : ''}<th>mode</th><th>batch</th><th>precision</th><th>data</th><th>loading</th><th>backend</th><th>framework</th>` +
    `<th>threads</th><th>img/s</th><th>median ms</th><th>p10-p90 ms</th><th>iters</th><th>GFLOP/s</th><th>% peak</th><th>flags</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

interface Headline {
  model: string;
  mode: string;
  ours: BenchRecord;
  others: { name: string; rec: BenchRecord | null; reason: string | null }[];
}

function headlines(records: ResultLine[]): Headline[] {
  const out: Headline[] = [];
  const ours = records.filter((r): r is BenchRecord => isModel(r) && r.framework === null && r.data === 'synthetic' && r.loading === 'compute');
  const models = [...new Set(ours.map((r) => r.name))];
  for (const model of models) {
    for (const mode of ['inference', 'training']) {
      const mine = ours.filter((r) => r.name === model && r.mode === mode);
      if (!mine.length) continue;
      // The largest batch measured: the throughput figure people quote.
      const batch = Math.max(...mine.map((r) => r.batch ?? 0));
      const o = mine.filter((r) => r.batch === batch).pop()!;
      const same = (r: ResultLine) => r.name === model && r.mode === mode && r.batch === batch && r.data === 'synthetic' && r.backend === o.backend;
      const fws = new Map<string, { name: string; rec: BenchRecord | null; reason: string | null }>();
      for (const r of records) {
        if (!same(r) || (r.kind !== 'model' && r.kind !== 'missing') || r.framework === null) continue;
        const name = fwName(r);
        fws.set(name, r.kind === 'missing' ? { name, rec: null, reason: (r as MissingRecord).reason } : { name, rec: r as BenchRecord, reason: null });
      }
      out.push({ model, mode, ours: o, others: [...fws.values()] });
    }
  }
  return out;
}

function headlineCards(h: Headline[]): string {
  return h.map(({ model, mode, ours, others }) => {
    const fw = others.map((x) => x.rec
      ? `<li><b>${esc(x.name)}</b> ${num(x.rec.imagesPerSec)} img/s (ours / ${esc(x.name)} = ${(ours.imagesPerSec! / x.rec.imagesPerSec!).toFixed(2)}x)${x.rec.timing.noisy ? ' <span class="flag">noisy</span>' : ''}<br><small>${esc(x.rec.framework)}, ${x.rec.threads ?? '?'} threads</small></li>`
      : `<li><b>${esc(x.name)}</b> <span class="empty">no figure</span>: ${esc(x.reason)}</li>`).join('');
    return `<div class="card"><h3>${esc(model)} &middot; ${esc(mode)}</h3>` +
      `<div class="big">${num(ours.imagesPerSec)} img/s${ours.timing.noisy ? ' <span class="flag">noisy</span>' : ''}</div>` +
      `<p class="meaning">${esc(meaning(ours))}; ${ours.threads ?? '?'} threads on ${esc(ours.backend)}; ` +
      `${num(ours.gflops)} GFLOP/s${ours.pctOfPeak != null ? ` = ${num(ours.pctOfPeak)} % of the ${num(ours.peakGflops)} GFLOP/s peak` : ''} ` +
      `(${num((ours.flopsPerImage ?? 0) / 1e6, 1)} MFLOP per image${mode === 'training' ? ', 3 x forward' : ''}); median of ${ours.iters} steps, p10-p90 ${num(ours.timing.p10Ms, 2)}-${num(ours.timing.p90Ms, 2)} ms.</p>` +
      `<ul>${fw}</ul></div>`;
  }).join('');
}

/**
 * The headline table as Markdown: per model and mode (largest batch measured, synthetic data,
 * loading excluded), ours and every framework column with the ratio, or why it is empty.
 */
export function headlineMarkdown(records: ResultLine[]): string {
  const hs = headlines(records);
  const fws = [...new Set(hs.flatMap((h) => h.others.map((o) => o.name)))].sort();
  const head = ['model', 'mode', 'batch', 'imagerate img/s', ...fws.map((f) => `${f} img/s`), 'what one step is'];
  const rows = hs.map((h) => [
    h.model, h.mode, String(h.ours.batch), `${num(h.ours.imagesPerSec)}${h.ours.timing.noisy ? ' (noisy)' : ''}`,
    ...fws.map((f) => {
      const o = h.others.find((x) => x.name === f);
      if (!o) return '';
      if (!o.rec) return `- (${/measured for inference only/.test(o.reason ?? '') ? 'inference only' : o.reason})`;
      const th = o.rec.threads !== h.ours.threads ? `; ${o.rec.threads ?? '?'} thread${o.rec.threads === 1 ? '' : 's'}` : '';
      return `${num(o.rec.imagesPerSec)} (ours ${(h.ours.imagesPerSec! / o.rec.imagesPerSec!).toFixed(2)}x${th})${o.rec.timing.noisy ? ' (noisy)' : ''}`;
    }),
    `${meaning(h.ours)}; ${h.ours.threads ?? '?'} threads`,
  ]);
  const line = (c: string[]) => `| ${c.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}

export function buildReport(inputs: ReportInput[], opts: ReportOptions = {}): string {
  const multi = inputs.length > 1;
  const files = new Map<ResultLine, string>();
  const shortName = (f: string) => basename(dirname(f)) + '/' + basename(f);
  for (const i of inputs) for (const r of i.records) files.set(r, shortName(i.file));
  const all = inputs.flatMap((i) => i.records);

  // Reruns: the same key more than once (in one file or across files on the same machine).
  const noisyKeys = new Map<string, string>();
  const byKey = new Map<string, BenchRecord[]>();
  for (const r of all) if (r.kind !== 'missing') byKey.set(recordKey(r), [...(byKey.get(recordKey(r)) ?? []), r]);
  for (const [k, all_] of byKey) {
    // Runs on other machines are a comparison (below), not a rerun.
    const rs = all_.filter((r) => sameMachine(r.host, all_[0].host));
    if (rs.length < 2) continue;
    const meds = rs.map((r) => r.timing.medianMs);
    const spread = Math.max(...meds) / Math.min(...meds) - 1;
    if (spread > AGREE_WITHIN) noisyKeys.set(k, `noisy: runs ${(spread * 100).toFixed(0)} % apart`);
  }

  const models = [...new Set(all.filter((r) => r.kind === 'model' || (r.kind === 'missing' && r.for === 'model')).map((r) => r.name))];
  const modelSections = models.map((m) => {
    const rs = all.filter((r) => (r.kind === 'model' || (r.kind === 'missing' && r.for === 'model')) && r.name === m)
      .sort((a, b) => String(a.mode).localeCompare(String(b.mode)) || (a.batch ?? 0) - (b.batch ?? 0) || fwName(a).localeCompare(fwName(b)));
    const flopsRec = rs.find((r): r is BenchRecord => r.kind === 'model' && r.mode === 'inference' && !!r.flopsPerImage);
    return `<h3 id="model-${esc(m)}">${esc(m)}</h3><p class="meaning">${flopsRec ? `${num(flopsRec.flopsPerImage! / 1e6, 2)} MFLOP per image forward (conv + fc multiply-adds x 2); training counts 3 x forward. ` : ''}` +
      `Every row: inference = forward only in eval mode; training = forward + backward + SGD update; 'compute' = data made and uploaded once (loading excluded); 'end-to-end' = batches drawn from the dataset and uploaded every step (loading included).</p>` +
      modelTable(rs, multi, files, noisyKeys);
  }).join('');

  // img/s vs batch: per model and mode, one series per (framework, backend, data/loading, file).
  const ipsCharts: { id: string; title: string; series: { label: string; group: string; run: number; points: { x: number; y: number }[] }[] }[] = [];
  for (const m of models) {
    for (const mode of ['inference', 'training']) {
      const series = new Map<string, { group: string; run: number; points: { x: number; y: number }[] }>();
      inputs.forEach((i, run) => {
        for (const r of i.records) {
          if (!isModel(r) || r.name !== m || r.mode !== mode || !r.imagesPerSec) continue;
          const label = seriesName(r, multi, shortName(i.file));
          const s = series.get(label) ?? { group: seriesName(r, false, ''), run, points: [] };
          s.points = [...s.points.filter((p) => p.x !== r.batch), { x: r.batch!, y: r.imagesPerSec }];
          series.set(label, s);
        }
      });
      if (!series.size) continue;
      ipsCharts.push({
        id: `ips-${m}-${mode}`, title: `${m}, ${mode}: images/s vs batch${multi ? ' (one colour per framework; dashed: later files)' : ''}`,
        series: [...series].map(([label, s]) => ({ label, group: s.group, run: s.run, points: s.points.sort((a, b) => a.x - b.x) })),
      });
    }
  }

  // Roofline.
  const kernels = all.filter((r): r is BenchRecord => r.kind === 'kernel' && r.name !== 'stream-scale' && r.name !== 'sgemm' && !!r.arithmeticIntensity && !!r.gflops);
  const sgemm = all.filter((r): r is BenchRecord => r.kind === 'kernel' && r.name === 'sgemm' && r.framework === null && !!r.gflops);
  const bw = all.filter((r): r is BenchRecord => r.kind === 'kernel' && r.name === 'stream-scale').pop();
  const peakRec = kernels.find((r) => r.peakGflops) ?? all.find((r): r is BenchRecord => r.kind !== 'missing' && !!r.peakGflops);
  const peak = peakRec?.peakGflops ?? null;
  const bwGbps = bw?.peakGbps ?? bw?.gbps ?? null;
  const roofline = {
    peak, bw: bwGbps,
    series: [...new Set(kernels.map((k) => k.name))].map((name) => ({
      label: name,
      points: kernels.filter((k) => k.name === name).map((k) => ({ x: k.arithmeticIntensity!, y: k.gflops!, label: `${k.label ?? ''} (${name})` })),
    })).concat(sgemm.length ? [{ label: 'sgemm (square)', points: sgemm.map((k) => ({ x: (2 * Number(k.shape.n) ** 3) / (12 * Number(k.shape.n) ** 2), y: k.gflops!, label: `sgemm ${k.shape.n}^3, ${sgemmWho(k)}` })) }] : []),
  };
  const isOverhead = (r: BenchRecord) => r.suite === 'overhead';
  const kernelRows = all.filter((r): r is BenchRecord => r.kind === 'kernel' && !isOverhead(r)).map((r) => {
    const pool = r.name.includes('pool') || r.name === 'stream-scale';
    const flags = [r.timing.noisy ? `noisy: spread ${(((r.timing.p90Ms - r.timing.p10Ms) / r.timing.medianMs) * 100).toFixed(0)} %` : '', noisyKeys.get(recordKey(r)) ?? ''].filter(Boolean).join('; ');
    return `<tr${flags ? ' class="noisy"' : ''}><td>${esc(r.suite ?? '')}</td><td>${esc(r.name)}</td><td>${esc(r.label ?? JSON.stringify(r.shape))}</td><td>${esc(r.framework ?? 'imagerate')}</td><td>${r.threads ?? ''}</td>` +
      `<td class="n">${num(r.timing.medianMs, 3)}</td><td class="n">${num(r.timing.p10Ms, 3)}-${num(r.timing.p90Ms, 3)}</td>` +
      `<td class="n">${pool ? '' : num(r.gflops)}</td><td class="n">${num(r.gbps)}</td><td class="n">${num(r.arithmeticIntensity, 2)}</td>` +
      `<td class="n">${pool ? (r.gbps && r.peakGbps ? `${num((100 * r.gbps) / r.peakGbps)} % bw` : '') : num(r.pctOfPeak)}</td><td>${esc(flags)}</td></tr>`;
  }).join('');

  // Host-side overhead: microseconds, with Benchmark.js's own statistics from the notes.
  const overheadRows = all.filter((r): r is BenchRecord => r.kind === 'kernel' && isOverhead(r)).map((r) => {
    const us = (ms: number) => num(ms * 1e3, 2);
    const flags = [r.timing.noisy ? `noisy: spread ${(((r.timing.p90Ms - r.timing.p10Ms) / r.timing.medianMs) * 100).toFixed(0)} %` : '', noisyKeys.get(recordKey(r)) ?? ''].filter(Boolean).join('; ');
    return `<tr${flags ? ' class="noisy"' : ''}>${multi ? `<td>${esc(files.get(r))}</td>` : ''}<td>${esc(r.backend)}</td><td>${esc(r.name)}</td><td>${esc(r.label ?? '')}</td><td>${r.threads ?? ''}</td>` +
      `<td class="n">${us(r.timing.medianMs)}</td><td class="n">${us(r.timing.p10Ms)}-${us(r.timing.p90Ms)}</td><td>${esc(r.notes)}</td><td>${esc(flags)}</td></tr>`;
  }).join('');
  const overheadSection = overheadRows
    ? `<h2 id="overhead">Host-side overhead</h2><p class="meaning">Measured with Benchmark.js (<code>imagerate bench overhead</code>): every call ends with a sync; median and p10-p90 are over Benchmark.js's cycles, each the mean of many calls, in microseconds. ` +
      `overhead/fence = an empty sync; overhead/enqueue = one tiny op's enqueue cost, the fence subtracted; overhead/lenet5-* = LeNet-5 at batch 1, where autograd and dispatch dominate.</p>` +
      `<table><thead><tr>${multi ? '<th>file</th>' : ''}<th>backend</th><th>figure</th><th>what</th><th>threads</th><th>median us</th><th>p10-p90 us</th><th>notes</th><th>flags</th></tr></thead><tbody>${overheadRows}</tbody></table>`
    : '';

  // Per-layer breakdown: one chart per (file, model, batch, mode).
  const layerCharts: { id: string; title: string; note: string; labels: string[]; passes: { label: string; data: number[] }[] }[] = [];
  const layerGroups = new Map<string, BenchRecord[]>();
  for (const r of all) {
    if (r.kind !== 'layer' || !r.layer) continue;
    const k = `${files.get(r)}|${r.layer.model}|${r.batch}|${r.mode}`;
    layerGroups.set(k, [...(layerGroups.get(k) ?? []), r]);
  }
  let li = 0;
  for (const [k, rs] of layerGroups) {
    const [file, model, batch, mode] = k.split('|');
    // Group deep module paths (ResNet-50's 160 modules) by their first two components.
    // A block's own ops (residual add + ReLU) join the block's bar.
    const group = (m: string) => {
      const parts = m.replace(/ \(own ops\)$/, '').split('.');
      return parts.length >= 2 ? parts.slice(0, 2).join('.') : m;
    };
    const opOf = new Map<string, string>();
    const sums = new Map<string, Map<string, number>>();
    for (const r of rs) {
      const g = group(r.layer!.module);
      if (g === r.layer!.module) opOf.set(g, r.layer!.op);
      const p = sums.get(r.layer!.pass) ?? new Map<string, number>();
      p.set(g, (p.get(g) ?? 0) + r.timing.medianMs);
      sums.set(r.layer!.pass, p);
    }
    const labels = [...new Set(rs.map((r) => group(r.layer!.module)))];
    const total = labels.map((l) => [...sums.values()].reduce((s, p) => s + (p.get(l) ?? 0), 0));
    const order = labels.map((l, i) => [l, total[i]] as const).sort((a, b) => b[1] - a[1]).slice(0, 40).map(([l]) => l);
    const step = rs[0].layer!.stepMedianMs ?? null;
    layerCharts.push({
      id: `layers-${li++}`, title: `${model}: time per layer of one ${mode === 'training' ? 'training step' : 'forward'}, batch ${batch}${multi ? ` [${file}]` : ''}`,
      note: `Medians over ${rs[0].iters} profiled steps, ms; step median ${step?.toFixed(1) ?? '?'} ms. Forward and backward are charged to the module that ran them; ` +
        `'(own ops)' = a block's functional ops (residual add + ReLU); 'other' = gradient accumulation and frees. Ops run inline (IMAGERATE_CPU_SYNC=1), so each layer is timed alone.`,
      labels: order.map((l) => (opOf.get(l) && !/own ops|^loss$|^sgd$|^other$/.test(l) ? `${l} ${opOf.get(l)}` : l)),
      passes: [...sums].map(([pass, p]) => ({ label: pass, data: order.map((l) => +(p.get(l) ?? 0).toFixed(4)) })),
    });
  }

  // Comparison (two or more files): each file against the first.
  let compare = '';
  if (multi) {
    const sections = inputs.slice(1).map((b) => {
      const rows: CompareRow[] = compareRuns(inputs[0].records, b.records).filter((r) => r.a && r.b);
      const body = rows.map((r) => `<tr${r.flag ? ' class="noisy"' : ''}><td>${esc(r.label)}</td><td>${esc(r.unit)}</td><td class="n">${num(r.va, 2)}</td><td class="n">${num(r.vb, 2)}</td>` +
        `<td class="n">${r.ratio === null ? '' : r.ratio.toFixed(2) + 'x'}</td><td>${esc(r.flag)}</td><td>${esc(r.why)}</td></tr>`).join('');
      const flagged = rows.filter((r) => r.flag).length;
      return `<h3>${esc(shortName(inputs[0].file))} (A) vs ${esc(shortName(b.file))} (B)</h3><p class="meaning">${rows.length} figures in both; ${flagged} flagged. ` +
        `B/A &gt; 1: B is faster. 'noisy': the same machine, medians more than ${AGREE_WITHIN * 100} % apart, or a wide p10-p90 spread; 'differs': different machines, more than ${AGREE_WITHIN * 100} % apart.</p>` +
        `<table><thead><tr><th>benchmark</th><th>unit</th><th>A</th><th>B</th><th>B/A</th><th>flag</th><th>why</th></tr></thead><tbody>${body}</tbody></table>`;
    });
    compare = `<h2 id="compare">Run vs run</h2>${sections.join('')}`;
  }
  const missing = all.filter((r): r is MissingRecord => r.kind === 'missing');
  const missingList = [...new Map(missing.map((m) => [`${m.framework}: ${m.reason}`, m])).values()]
    .map((m) => `<li><b>${esc(m.framework ?? m.backend)}</b> (${esc(m.name)} ${esc(m.mode)}): ${esc(m.reason)}</li>`).join('');

  const data = { ipsCharts, roofline, layerCharts };
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const title = opts.title ?? 'imagerate benchmark report';
  const inputsList = inputs.map((i) => `<li><code>${esc(i.file)}</code>: ${i.records.length} records; ${hostSummary(i.records)}</li>`).join('');
  const heads = headlines(inputs[inputs.length - 1]?.records ?? []);

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #1d2430; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 2px solid #dde3ea; padding-bottom: .2em; } h3 { margin: 1.4em 0 .3em; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; margin: .5em 0 1em; }
th, td { border: 1px solid #dde3ea; padding: 3px 6px; text-align: left; vertical-align: top; } th { background: #f3f6f9; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } tr.noisy td { background: #fff7e0; } tr.missing td { color: #8a94a3; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px; }
.card { border: 1px solid #dde3ea; border-radius: 8px; padding: 10px 14px; background: #fbfcfd; }
.card h3 { margin: 0 0 .2em; } .big { font-size: 1.9em; font-weight: 600; } .meaning { color: #4a5566; margin: .3em 0; }
.card ul { margin: .3em 0 0; padding-left: 1.1em; } .empty { color: #a33; } .flag { color: #9a6700; font-size: .6em; border: 1px solid #d4a72c; border-radius: 4px; padding: 0 4px; }
.chart { position: relative; height: 340px; margin: .5em 0 1.5em; } .chart.tall { height: 560px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; } @media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
small, .note { color: #5b6675; }
</style></head><body>
<h1>${esc(title)}</h1>
<p class="note">Generated ${esc(new Date().toISOString().slice(0, 16).replace('T', ' '))} UTC from:</p><ul>${inputsList}</ul>
<p class="note">Flags: <b>noisy: spread N %</b> = the run's own p10-p90 spread is over 10 % of its median; <b>noisy: runs N % apart</b> = two runs of the same benchmark (same key, in these files) disagree by more than ${AGREE_WITHIN * 100} % on medians. Flagged rows are shaded.</p>
<p class="note">Every figure carries its conditions. Training = forward + backward + SGD update; inference = forward only, eval mode. 'compute' = data loading excluded; 'end-to-end' = data loading included. fp32 throughout (the CPU backend has no reduced precision). Median of the timed iterations, each synced.</p>
<h2 id="headline">Headline figures</h2>
<div class="cards">${headlineCards(heads)}</div>
<h2 id="throughput">Images per second vs batch size</h2>
<div class="grid2">${ipsCharts.map((c) => `<div><h3>${esc(c.title)}</h3><div class="chart"><canvas id="${esc(c.id)}"></canvas></div></div>`).join('')}</div>
<h2 id="models">Model tables</h2>${modelSections}
<h2 id="roofline-section">Kernel roofline</h2>
<p class="meaning">Each point is one kernel call at a real layer shape (suites: ${esc([...new Set(kernels.map((k) => k.suite))].join(', '))}): x = arithmetic intensity, FLOPs per compulsory byte (every operand read once, every result written once, fp32); y = achieved GFLOP/s (median). ` +
    `Roofs: the fp32 peak of the threads used, ${peak ? `${num(peak)} GFLOP/s` : 'unknown'}${peakRec ? ` (${esc(peakRec.host.cpuPeak.formula)})` : ''}, and the memory bandwidth, ${bwGbps ? `${num(bwGbps)} GB/s` : 'not measured'}${bw ? ` (${esc(bw.notes.replace(/^roofline bandwidth roof: /, 'measured: '))})` : ''}. Pooling moves data and does little arithmetic: it sits on the bandwidth roof's left.</p>
<div class="chart tall"><canvas id="roofline"></canvas></div>
<table><thead><tr><th>suite</th><th>kernel</th><th>layer</th><th>framework</th><th>threads</th><th>median ms</th><th>p10-p90 ms</th><th>GFLOP/s</th><th>GB/s</th><th>FLOP/byte</th><th>% peak</th><th>flags</th></tr></thead><tbody>${kernelRows}</tbody></table>
${overheadSection}
<h2 id="layers">Per-layer time of one training step</h2>
${layerCharts.length ? layerCharts.map((c) => `<h3>${esc(c.title)}</h3><p class="meaning">${esc(c.note)}</p><div class="chart tall"><canvas id="${esc(c.id)}"></canvas></div>`).join('') : '<p class="note">No per-layer records (run <code>imagerate bench models --profile</code>).</p>'}
${compare}
<h2 id="missing">Columns left empty</h2>${missingList ? `<ul>${missingList}</ul>` : '<p class="note">None: every framework ran.</p>'}
<script>${chartJsSource().replace(/<\/script/gi, '<\\/script')}</script>
<script id="report-data" type="application/json">${json}</script>
<script>
(function () {
  var D = JSON.parse(document.getElementById('report-data').textContent);
  Chart.defaults.animation = false;
  Chart.defaults.font.size = 11;
  var palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  function color(i) { return palette[i % palette.length]; }
  // Log axes: label 1, 2 and 5 times a power of ten only.
  function tick125(v) {
    var e = Math.floor(Math.log10(v) + 1e-9), m = Math.round(v / Math.pow(10, e) * 1000) / 1000;
    return (m === 1 || m === 2 || m === 5) ? (v >= 1000 ? v.toLocaleString('en-US') : String(+v.toPrecision(3))) : '';
  }
  D.ipsCharts.forEach(function (c) {
    var groups = {};
    new Chart(document.getElementById(c.id), {
      type: 'line',
      data: { datasets: c.series.map(function (s) {
        if (!(s.group in groups)) groups[s.group] = Object.keys(groups).length;
        var col = color(groups[s.group]);
        return { label: s.label, data: s.points, borderColor: col, backgroundColor: col, borderDash: s.run > 0 ? [6, 4] : [], pointStyle: s.run > 0 ? 'rectRot' : 'circle', pointRadius: 4, tension: 0 };
      }) },
      options: { maintainAspectRatio: false, parsing: false, scales: {
        x: { type: 'logarithmic', title: { display: true, text: 'batch size' },
          afterBuildTicks: function (axis) {
            var seen = {}; c.series.forEach(function (s) { s.points.forEach(function (p) { seen[p.x] = 1; }); });
            axis.ticks = Object.keys(seen).map(Number).sort(function (a, b) { return a - b; }).map(function (v) { return { value: v }; });
          },
          ticks: { callback: function (v) { return String(v); } } },
        y: { type: 'logarithmic', title: { display: true, text: 'images / s (median)' } } } }
    });
  });
  var R = D.roofline;
  var xs = [];
  R.series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p.x); }); });
  if (xs.length) {
    var lo = Math.min.apply(null, xs) / 2, hi = Math.max.apply(null, xs) * 2;
    var sets = R.series.map(function (s, i) {
      return { type: 'scatter', label: s.label, data: s.points, borderColor: color(i), backgroundColor: color(i), pointRadius: 4 };
    });
    if (R.peak && R.bw) {
      var ridge = R.peak / R.bw, roof = [];
      [lo, Math.max(lo, Math.min(ridge, hi)), hi].forEach(function (x) { roof.push({ x: x, y: Math.min(R.peak, R.bw * x) }); });
      sets.push({ type: 'line', label: 'roof: min(peak, bandwidth x intensity)', data: roof, borderColor: '#000', borderDash: [6, 4], pointRadius: 0, fill: false });
    } else if (R.peak) {
      sets.push({ type: 'line', label: 'peak', data: [{ x: lo, y: R.peak }, { x: hi, y: R.peak }], borderColor: '#000', borderDash: [6, 4], pointRadius: 0 });
    }
    new Chart(document.getElementById('roofline'), {
      type: 'scatter', data: { datasets: sets },
      options: { maintainAspectRatio: false, parsing: false, scales: {
        x: { type: 'logarithmic', title: { display: true, text: 'arithmetic intensity (FLOP / byte)' }, ticks: { callback: tick125 } },
        y: { type: 'logarithmic', title: { display: true, text: 'GFLOP/s (median)' } } },
        plugins: { tooltip: { callbacks: { label: function (ctx) { var p = ctx.raw; return (p.label || ctx.dataset.label) + ': ' + p.y.toFixed(1) + ' GFLOP/s at ' + p.x.toFixed(2) + ' FLOP/B'; } } } } }
    });
  }
  D.layerCharts.forEach(function (c) {
    new Chart(document.getElementById(c.id), {
      type: 'bar',
      data: { labels: c.labels, datasets: c.passes.map(function (p, i) { return { label: p.label, data: p.data, backgroundColor: color(i) }; }) },
      options: { indexAxis: 'y', maintainAspectRatio: false, scales: { x: { stacked: true, title: { display: true, text: 'ms (median per step)' } }, y: { stacked: true, ticks: { autoSkip: false } } } }
    });
  });
})();
</script>
</body></html>
`;
}
