// The report's plots, as Chart.js data and the script that draws them in the page (html.ts):
//   - images/s vs batch size, one plot per model and mode, one line per backend + framework;
//   - a roofline of the kernels: arithmetic intensity (FLOPs per compulsory byte) vs achieved
//     GFLOP/s, on log axes, under the peak roof (host.ts cpuPeak) and the bandwidth roof
//     (measured: the 'stream-scale' record, see kernel-bench.ts);
//   - the per-layer time of one training step (records of kind 'layer'), as stacked bars.
// No network at view time: Chart.js (MIT licence, npm `chart.js`, its UMD build
// dist/chart.umd.min.js) is inlined in a <script> element, and so are the data.
// Chart instances stay reachable as Chart.instances (the browser test counts their points).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { BenchRecord, ResultLine } from '../bench/record.js';
import { esc, fwName, isModel, num } from './format.js';
import type { ReportInput } from './html.js';

const require = createRequire(import.meta.url);

/** Chart.js's UMD build, to inline. */
export function chartJsSource(): string {
  // The package's exports hide package.json; its main entry lives in dist/ beside the UMD build.
  const main = require.resolve('chart.js');
  return readFileSync(join(dirname(main), 'chart.umd.min.js'), 'utf8');
}

const seriesName = (r: BenchRecord, multi: boolean, file: string) =>
  `${fwName(r)} (${r.backend}${r.cudaGraph ? ', CUDA graph' : ''}${r.loading === 'end-to-end' ? `, ${r.data} end-to-end` : r.data !== 'synthetic' ? `, ${r.data}` : ''})${multi ? ` [${file}]` : ''}`;

/** Who ran a square SGEMM, for its roofline point: the WebGPU variant where the sweep timed one, else the threads. */
const sgemmWho = (k: BenchRecord) => (k.shape.variant ? `variant ${String(k.shape.variant)}` : `${k.threads} threads`);

export interface IpsChart { id: string; title: string; series: { label: string; group: string; run: number; points: { x: number; y: number }[] }[] }

/** img/s vs batch: per model and mode, one series per (framework, backend, data/loading, file). */
export function ipsCharts(inputs: ReportInput[], models: string[], multi: boolean, shortName: (f: string) => string): IpsChart[] {
  const charts: IpsChart[] = [];
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
      charts.push({
        id: `ips-${m}-${mode}`, title: `${m}, ${mode}: images/s vs batch${multi ? ' (one colour per framework; dashed: later files)' : ''}`,
        series: [...series].map(([label, s]) => ({ label, group: s.group, run: s.run, points: s.points.sort((a, b) => a.x - b.x) })),
      });
    }
  }
  return charts;
}

export interface Roofline {
  /** The chart's data: the two roofs (null where unknown) and one series of points per kernel. */
  spec: { peak: number | null; bw: number | null; series: { label: string; points: { x: number; y: number; label: string }[] }[] };
  /** What the chart shows and where its roofs come from, as a paragraph. */
  note: string;
}

export function roofline(all: ResultLine[]): Roofline {
  const kernels = all.filter((r): r is BenchRecord => r.kind === 'kernel' && r.name !== 'stream-scale' && r.name !== 'sgemm' && !!r.arithmeticIntensity && !!r.gflops);
  const sgemm = all.filter((r): r is BenchRecord => r.kind === 'kernel' && r.name === 'sgemm' && r.framework === null && !!r.gflops);
  const bw = all.filter((r): r is BenchRecord => r.kind === 'kernel' && r.name === 'stream-scale').pop();
  const peakRec = kernels.find((r) => r.peakGflops) ?? all.find((r): r is BenchRecord => r.kind !== 'missing' && !!r.peakGflops);
  const peak = peakRec?.peakGflops ?? null;
  const bwGbps = bw?.peakGbps ?? bw?.gbps ?? null;
  const spec = {
    peak, bw: bwGbps,
    series: [...new Set(kernels.map((k) => k.name))].map((name) => ({
      label: name,
      points: kernels.filter((k) => k.name === name).map((k) => ({ x: k.arithmeticIntensity!, y: k.gflops!, label: `${k.label ?? ''} (${name})` })),
    })).concat(sgemm.length ? [{ label: 'sgemm (square)', points: sgemm.map((k) => ({ x: (2 * Number(k.shape.n) ** 3) / (12 * Number(k.shape.n) ** 2), y: k.gflops!, label: `sgemm ${k.shape.n}^3, ${sgemmWho(k)}` })) }] : []),
  };
  const note = `<p class="meaning">Each point is one kernel call at a real layer shape (suites: ${esc([...new Set(kernels.map((k) => k.suite))].join(', '))}): x = arithmetic intensity, FLOPs per compulsory byte (every operand read once, every result written once, fp32); y = achieved GFLOP/s (median). ` +
    `Roofs: the fp32 peak of the threads used, ${peak ? `${num(peak)} GFLOP/s` : 'unknown'}${peakRec ? ` (${esc(peakRec.host.cpuPeak.formula)})` : ''}, and the memory bandwidth, ${bwGbps ? `${num(bwGbps)} GB/s` : 'not measured'}${bw ? ` (${esc(bw.notes.replace(/^roofline bandwidth roof: /, 'measured: '))})` : ''}. Pooling moves data and does little arithmetic: it sits on the bandwidth roof's left.</p>`;
  return { spec, note };
}

export interface LayerChart { id: string; title: string; note: string; labels: string[]; passes: { label: string; data: number[] }[] }

/** Per-layer breakdown: one chart per (file, model, batch, mode). */
export function layerCharts(all: ResultLine[], files: Map<ResultLine, string>, multi: boolean): LayerChart[] {
  const charts: LayerChart[] = [];
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
    charts.push({
      id: `layers-${li++}`, title: `${model}: time per layer of one ${mode === 'training' ? 'training step' : 'forward'}, batch ${batch}${multi ? ` [${file}]` : ''}`,
      note: `Medians over ${rs[0].iters} profiled steps, ms; step median ${step?.toFixed(1) ?? '?'} ms. Forward and backward are charged to the module that ran them; ` +
        `'(own ops)' = a block's functional ops (residual add + ReLU); 'other' = gradient accumulation and frees. Ops run inline (IMAGERATE_CPU_SYNC=1), so each layer is timed alone.`,
      labels: order.map((l) => (opOf.get(l) && !/own ops|^loss$|^sgd$|^other$/.test(l) ? `${l} ${opOf.get(l)}` : l)),
      passes: [...sums].map(([pass, p]) => ({ label: pass, data: order.map((l) => +(p.get(l) ?? 0).toFixed(4)) })),
    });
  }
  return charts;
}

/** What the page's script draws, inlined as JSON. */
export interface ChartData { ipsCharts: IpsChart[]; roofline: Roofline['spec']; layerCharts: LayerChart[] }

/**
 * The page's scripts: Chart.js, the charts' data as JSON, and the code that draws them
 * (canvases with the charts' ids must be on the page).
 */
export function chartScripts(data: ChartData): string {
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<script>${chartJsSource().replace(/<\/script/gi, '<\\/script')}</script>
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
</script>`;
}
