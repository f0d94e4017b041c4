// `imagerate report <files...> --html out.html`: one self-contained HTML page from record files.
//
// No network at view time: Chart.js and the data are inlined (charts.ts). This file assembles
// the page; its sections, in order:
//   - the headline figures: per model and mode, our images/s with the sentence that says what
//     it means (mode, batch, precision, data, loading), and every framework column beside it
//     (or why it is empty) (headlines.ts);
//   - images/s vs batch size, one plot per model and mode, one line per backend + framework
//     (charts.ts);
//   - a table per model: every record, with mode/batch/precision/data/loading in every row
//     (tables.ts);
//   - a roofline of the kernels (charts.ts) above the table of kernel records (tables.ts);
//   - host-side overhead (bench overhead), as a table (tables.ts);
//   - the per-layer time of one training step (records of kind 'layer'), as stacked bars
//     (charts.ts);
//   - with two or more files: the run-vs-run / machine-vs-machine table (tables.ts), flags
//     for figures that disagree by more than 5 %, and the records' own noisy flags;
//   - the framework columns left empty, and why (tables.ts).
import { dirname, basename } from 'node:path';
import type { BenchRecord, ResultLine } from '../bench/record.js';
import { AGREE_WITHIN } from '../bench/compare.js';
import { chartScripts, ipsCharts, layerCharts, roofline } from './charts.js';
import { esc } from './format.js';
import { headlineCards, headlines } from './headlines.js';
import { compareSection, kernelTable, missingList, modelSections, overheadSection, rerunFlags } from './tables.js';

export interface ReportInput {
  file: string;
  records: ResultLine[];
}

export interface ReportOptions {
  title?: string;
}

function hostSummary(records: ResultLine[]): string {
  const r = records.find((x): x is BenchRecord => x.kind !== 'missing' && !!x.host?.cpuModel);
  if (!r) return 'no host information';
  const h = r.host;
  const p = h.cpuPeak;
  return `${esc(h.cpuModel)}, ${h.cores} cores, ${(h.memoryBytes / 2 ** 30).toFixed(0)} GiB, ${esc(h.os)}, Node ${esc(h.node)}${h.gpu ? `, GPU ${esc(h.gpu)}` : ''}; ` +
    `fp32 peak ${p?.gflops ? `${p.gflops.toFixed(1)} GFLOP/s (${esc(p.formula)})` : 'unknown'}; imagerate ${esc(r.imagerate?.version)} (${esc(r.imagerate?.commit ?? 'no commit')}), measured ${esc(r.date.slice(0, 16).replace('T', ' '))} UTC`;
}

const NO_MODELS = '<p class="note">No model records in these files (run <code>imagerate bench models</code> or <code>bench all</code>).</p>';

export function buildReport(inputs: ReportInput[], opts: ReportOptions = {}): string {
  const multi = inputs.length > 1;
  const files = new Map<ResultLine, string>();
  const shortName = (f: string) => basename(dirname(f)) + '/' + basename(f);
  for (const i of inputs) for (const r of i.records) files.set(r, shortName(i.file));
  const all = inputs.flatMap((i) => i.records);

  const noisyKeys = rerunFlags(all);
  const models = [...new Set(all.filter((r) => r.kind === 'model' || (r.kind === 'missing' && r.for === 'model')).map((r) => r.name))];
  const ips = ipsCharts(inputs, models, multi, shortName);
  const roof = roofline(all);
  const layers = layerCharts(all, files, multi);
  const missing = missingList(all);
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
${heads.length ? `<div class="cards">${headlineCards(heads)}</div>` : models.length ? '<p class="note">No headline: the headline cards show eager, compute-only runs on synthetic data of the last file, and it holds none.</p>' : NO_MODELS}
<h2 id="throughput">Images per second vs batch size</h2>
${ips.length ? '' : NO_MODELS}<div class="grid2">${ips.map((c) => `<div><h3>${esc(c.title)}</h3><div class="chart"><canvas id="${esc(c.id)}"></canvas></div></div>`).join('')}</div>
<h2 id="models">Model tables</h2>${models.length ? modelSections(all, models, multi, files, noisyKeys) : NO_MODELS}
<h2 id="roofline-section">Kernel roofline</h2>
${roof.note}
<div class="chart tall"><canvas id="roofline"></canvas></div>
${kernelTable(all, noisyKeys)}
${overheadSection(all, multi, files, noisyKeys)}
<h2 id="layers">Per-layer time of one training step</h2>
${layers.length ? layers.map((c) => `<h3>${esc(c.title)}</h3><p class="meaning">${esc(c.note)}</p><div class="chart tall"><canvas id="${esc(c.id)}"></canvas></div>`).join('') : '<p class="note">No per-layer records (run <code>imagerate bench models --profile</code>).</p>'}
${compareSection(inputs, shortName)}
<h2 id="missing">Columns left empty</h2>${missing ? `<ul>${missing}</ul>` : (all.some((r) => r.framework) ? '<p class="note">None: every framework ran.</p>' : '<p class="note">None: no framework was measured in these files.</p>')}
${chartScripts({ ipsCharts: ips, roofline: roof.spec, layerCharts: layers })}
</body></html>
`;
}
