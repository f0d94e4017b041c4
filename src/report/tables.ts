// The report's tables, which html.ts places on the page:
//   - a table per model: every record, with mode/batch/precision/data/loading in every row;
//   - the kernel table under the roofline;
//   - host-side overhead (bench overhead: kernel records of suite 'overhead', timed with
//     Benchmark.js): the empty sync fence, one op's enqueue cost, LeNet-5 at batch 1;
//   - with two or more files: the run-vs-run / machine-vs-machine table (compare.ts), flags
//     for figures that disagree by more than 5 %, and the records' own noisy flags;
//   - the framework columns left empty, and why.
import { recordKey, type BenchRecord, type MissingRecord, type ResultLine } from '../bench/record.js';
import { compareRuns, sameMachine, AGREE_WITHIN, type CompareRow } from '../bench/compare.js';
import { esc, fwName, num } from './format.js';
import type { ReportInput } from './html.js';

/** Reruns: the same key more than once (in one file or across files on the same machine), by key, with their flag. */
export function rerunFlags(all: ResultLine[]): Map<string, string> {
  const noisyKeys = new Map<string, string>();
  const byKey = new Map<string, BenchRecord[]>();
  for (const r of all) if (r.kind !== 'missing') byKey.set(recordKey(r), [...(byKey.get(recordKey(r)) ?? []), r]);
  for (const [k, all_] of byKey) {
    // Runs on other machines are a comparison (compareSection), not a rerun.
    const rs = all_.filter((r) => sameMachine(r.host, all_[0].host));
    if (rs.length < 2) continue;
    const meds = rs.map((r) => r.timing.medianMs);
    const spread = Math.max(...meds) / Math.min(...meds) - 1;
    if (spread > AGREE_WITHIN) noisyKeys.set(k, `noisy: runs ${(spread * 100).toFixed(0)} % apart`);
  }
  return noisyKeys;
}

/** A row's flags: the record's own wide p10-p90 spread, and its rerun flag (rerunFlags). */
function flagsOf(r: BenchRecord, noisyKeys: Map<string, string>): string {
  const t = r.timing;
  return [t.noisy ? `noisy: spread ${(((t.p90Ms - t.p10Ms) / t.medianMs) * 100).toFixed(0)} %` : '', noisyKeys.get(recordKey(r)) ?? '']
    .filter(Boolean).join('; ');
}

function modelTable(records: ResultLine[], multi: boolean, files: Map<ResultLine, string>, noisyKeys: Map<string, string>): string {
  const rows = records.map((r) => {
    const file = multi ? `<td>${esc(files.get(r))}</td>` : '';
    if (r.kind === 'missing') {
      return `<tr class="missing">${file}<td>${esc(r.mode)}</td><td>${r.batch ?? ''}</td><td>${esc(r.precision)}</td><td>${esc(r.data)}</td><td>${esc(r.loading)}</td>` +
        `<td>${esc(r.backend)}</td><td>${esc(r.framework ?? 'imagerate')}</td><td colspan="7">not measured: ${esc(r.reason)}</td></tr>`;
    }
    const t = r.timing;
    const flags = flagsOf(r, noisyKeys);
    return `<tr${flags ? ' class="noisy"' : ''}>${file}<td>${esc(r.mode)}</td><td>${r.batch}</td><td>${esc(r.precision)}</td><td>${esc(r.data)}</td><td>${esc(r.loading)}${r.cudaGraph ? ', CUDA graph' : ''}</td>` +
      `<td>${esc(r.backend)}</td><td>${esc(r.framework ?? 'imagerate')}</td><td>${r.threads ?? ''}</td><td class="n">${num(r.imagesPerSec)}</td>` +
      `<td class="n">${num(t.medianMs, 2)}</td><td class="n">${num(t.p10Ms, 2)}-${num(t.p90Ms, 2)}</td><td class="n">${r.iters}</td>` +
      `<td class="n">${num(r.tflops !== undefined ? r.tflops * 1000 : null, 2)}</td><td class="n">${num(r.pctOfPeak, 1)}</td><td>${esc(flags)}</td></tr>`;
  });
  return `<table><thead><tr>${multi ? '<th>file</th>' : ''}<th>mode</th><th>batch</th><th>precision</th><th>data</th><th>loading</th><th>backend</th><th>framework</th>` +
    `<th>threads</th><th>img/s</th><th>median ms</th><th>p10-p90 ms</th><th>iters</th><th>GFLOP/s</th><th>% peak</th><th>flags</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** Per model: its heading, what its rows mean, and its table. */
export function modelSections(all: ResultLine[], models: string[], multi: boolean, files: Map<ResultLine, string>, noisyKeys: Map<string, string>): string {
  return models.map((m) => {
    const rs = all.filter((r) => (r.kind === 'model' || (r.kind === 'missing' && r.for === 'model')) && r.name === m)
      .sort((a, b) => String(a.mode).localeCompare(String(b.mode)) || (a.batch ?? 0) - (b.batch ?? 0) || fwName(a).localeCompare(fwName(b)));
    const flopsRec = rs.find((r): r is BenchRecord => r.kind === 'model' && r.mode === 'inference' && !!r.flopsPerImage);
    return `<h3 id="model-${esc(m)}">${esc(m)}</h3><p class="meaning">${flopsRec ? `${num(flopsRec.flopsPerImage! / 1e6, 2)} MFLOP per image forward (conv + fc multiply-adds x 2); training counts 3 x forward. ` : ''}` +
      `Every row: inference = forward only in eval mode; training = forward + backward + SGD update; 'compute' = data made and uploaded once (loading excluded); 'end-to-end' = batches drawn from the dataset and uploaded every step (loading included).</p>` +
      modelTable(rs, multi, files, noisyKeys);
  }).join('');
}

const isOverhead = (r: BenchRecord) => r.suite === 'overhead';

/** Every kernel record but the overhead figures, under the roofline. */
export function kernelTable(all: ResultLine[], noisyKeys: Map<string, string>): string {
  const kernelRows = all.filter((r): r is BenchRecord => r.kind === 'kernel' && !isOverhead(r)).map((r) => {
    const pool = r.name.includes('pool') || r.name === 'stream-scale';
    const flags = flagsOf(r, noisyKeys);
    return `<tr${flags ? ' class="noisy"' : ''}><td>${esc(r.suite ?? '')}</td><td>${esc(r.name)}</td><td>${esc(r.label ?? JSON.stringify(r.shape))}</td><td>${esc(r.framework ?? 'imagerate')}</td><td>${r.threads ?? ''}</td>` +
      `<td class="n">${num(r.timing.medianMs, 3)}</td><td class="n">${num(r.timing.p10Ms, 3)}-${num(r.timing.p90Ms, 3)}</td>` +
      `<td class="n">${pool ? '' : num(r.gflops)}</td><td class="n">${num(r.gbps)}</td><td class="n">${num(r.arithmeticIntensity, 2)}</td>` +
      `<td class="n">${pool ? (r.gbps && r.peakGbps ? `${num((100 * r.gbps) / r.peakGbps)} % bw` : '') : num(r.pctOfPeak)}</td><td>${esc(flags)}</td></tr>`;
  }).join('');
  return `<table><thead><tr><th>suite</th><th>kernel</th><th>layer</th><th>framework</th><th>threads</th><th>median ms</th><th>p10-p90 ms</th><th>GFLOP/s</th><th>GB/s</th><th>FLOP/byte</th><th>% peak</th><th>flags</th></tr></thead><tbody>${kernelRows}</tbody></table>`;
}

/** Host-side overhead: microseconds, with Benchmark.js's own statistics from the notes; '' without overhead records. */
export function overheadSection(all: ResultLine[], multi: boolean, files: Map<ResultLine, string>, noisyKeys: Map<string, string>): string {
  const overheadRows = all.filter((r): r is BenchRecord => r.kind === 'kernel' && isOverhead(r)).map((r) => {
    const us = (ms: number) => num(ms * 1e3, 2);
    const flags = flagsOf(r, noisyKeys);
    return `<tr${flags ? ' class="noisy"' : ''}>${multi ? `<td>${esc(files.get(r))}</td>` : ''}<td>${esc(r.backend)}</td><td>${esc(r.name)}</td><td>${esc(r.label ?? '')}</td><td>${r.threads ?? ''}</td>` +
      `<td class="n">${us(r.timing.medianMs)}</td><td class="n">${us(r.timing.p10Ms)}-${us(r.timing.p90Ms)}</td><td>${esc(r.notes)}</td><td>${esc(flags)}</td></tr>`;
  }).join('');
  return overheadRows
    ? `<h2 id="overhead">Host-side overhead</h2><p class="meaning">Measured with Benchmark.js (<code>imagerate bench overhead</code>): every call ends with a sync; median and p10-p90 are over Benchmark.js's cycles, each the mean of many calls, in microseconds. ` +
      `overhead/fence = an empty sync; overhead/enqueue = one tiny op's enqueue cost, the fence subtracted; overhead/lenet5-* = LeNet-5 at batch 1, where autograd and dispatch dominate.</p>` +
      `<table><thead><tr>${multi ? '<th>file</th>' : ''}<th>backend</th><th>figure</th><th>what</th><th>threads</th><th>median us</th><th>p10-p90 us</th><th>notes</th><th>flags</th></tr></thead><tbody>${overheadRows}</tbody></table>`
    : '';
}

/** Comparison (two or more files): each file against the first; '' with one file. */
export function compareSection(inputs: ReportInput[], shortName: (f: string) => string): string {
  if (inputs.length < 2) return '';
  const sections = inputs.slice(1).map((b) => {
    const rows: CompareRow[] = compareRuns(inputs[0].records, b.records).filter((r) => r.a && r.b);
    const body = rows.map((r) => `<tr${r.flag ? ' class="noisy"' : ''}><td>${esc(r.label)}</td><td>${esc(r.unit)}</td><td class="n">${num(r.va, 2)}</td><td class="n">${num(r.vb, 2)}</td>` +
      `<td class="n">${r.ratio === null ? '' : r.ratio.toFixed(2) + 'x'}</td><td>${esc(r.flag)}</td><td>${esc(r.why)}</td></tr>`).join('');
    const flagged = rows.filter((r) => r.flag).length;
    return `<h3>${esc(shortName(inputs[0].file))} (A) vs ${esc(shortName(b.file))} (B)</h3><p class="meaning">${rows.length} figures in both; ${flagged} flagged. ` +
      `B/A &gt; 1: B is faster. 'noisy': the same machine, medians more than ${AGREE_WITHIN * 100} % apart, or a wide p10-p90 spread; 'differs': different machines, more than ${AGREE_WITHIN * 100} % apart.</p>` +
      `<table><thead><tr><th>benchmark</th><th>unit</th><th>A</th><th>B</th><th>B/A</th><th>flag</th><th>why</th></tr></thead><tbody>${body}</tbody></table>`;
  });
  return `<h2 id="compare">Run vs run</h2>${sections.join('')}`;
}

/** The framework columns left empty, one item per framework and reason. */
export function missingList(all: ResultLine[]): string {
  const missing = all.filter((r): r is MissingRecord => r.kind === 'missing');
  return [...new Map(missing.map((m) => [`${m.framework}: ${m.reason}`, m])).values()]
    .map((m) => `<li><b>${esc(m.framework ?? m.backend)}</b> (${esc(m.name)} ${esc(m.mode)}): ${esc(m.reason)}</li>`).join('');
}
