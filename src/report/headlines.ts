// The headline figures: per model and mode, our images/s at the largest batch measured
// (synthetic data, loading excluded) with the sentence that says what it means (mode, batch,
// precision, data, loading), and every framework column beside it (or why it is empty). As
// cards at the top of the HTML report (html.ts) and as a Markdown table (`imagerate report
// --markdown`).
import { meaning, type BenchRecord, type MissingRecord, type ResultLine } from '../bench/record.js';
import { esc, fwName, isModel, num } from './format.js';

export interface Headline {
  model: string;
  mode: string;
  ours: BenchRecord;
  others: { name: string; rec: BenchRecord | null; reason: string | null }[];
}

export function headlines(records: ResultLine[]): Headline[] {
  const out: Headline[] = [];
  // Eager steps only: a --cuda-graph record of the same point is a different figure (tables show both).
  const ours = records.filter((r): r is BenchRecord => isModel(r) && r.framework === null && r.data === 'synthetic' && r.loading === 'compute' && !r.cudaGraph);
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

export function headlineCards(h: Headline[]): string {
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
