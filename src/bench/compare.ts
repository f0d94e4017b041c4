// Run-vs-run and machine-vs-machine comparison of record files (`imagerate compare a b`, and
// the report's comparison section), as in seed 003's "Machine 1 / Machine 2" tables, with ratios.
//
// Records are matched by recordKey(): (kind, name, mode, batch, precision, data, loading,
// backend, framework), plus the shape for kernels and the pass for layers. Where a file holds the same key
// more than once (a rerun appended to the same file), the last record counts.
//
// The compared figure is the median: images/s for models, GFLOP/s for compute kernels, GB/s for
// memory-bound ones (pooling, the bandwidth probe), milliseconds for layers. ratio = B / A for
// throughputs (> 1: B is faster) and A / B for times, so > 1 always means "B is faster".
// Two runs whose medians differ by more than AGREE_WITHIN (5 %) are flagged: as 'noisy' when
// both ran on the same machine (same CPU model, core count and GPU: the difference is noise),
// as 'differs' when the machines differ (the difference may be the machine). A figure whose
// own p10-p90 spread is wide (record.timing.noisy) is flagged 'noisy' in any case.
import { recordKey, type BenchRecord, type ResultLine } from './record.js';
import type { HostInfo } from './host.js';

export const AGREE_WITHIN = 0.05;

export interface CompareRow {
  key: string;
  kind: string;
  name: string;
  label: string;
  unit: string;
  a: BenchRecord | null;
  b: BenchRecord | null;
  va: number | null;
  vb: number | null;
  /** > 1: B is faster. */
  ratio: number | null;
  /** |median B / median A - 1|, on times. */
  medianDiff: number | null;
  flag: '' | 'noisy' | 'differs';
  why: string;
}

function isMemoryBound(r: BenchRecord): boolean {
  return r.name.includes('pool') || r.name === 'stream-scale';
}

/** The figure compared for a record and its unit. */
export function headlineValue(r: BenchRecord): { value: number | null; unit: string; higherIsBetter: boolean } {
  if (r.kind === 'model') return { value: r.imagesPerSec ?? null, unit: 'img/s', higherIsBetter: true };
  if (r.kind === 'layer' || r.suite === 'overhead') return { value: r.timing.medianMs, unit: 'ms', higherIsBetter: false };
  if (isMemoryBound(r)) return { value: r.gbps ?? null, unit: 'GB/s', higherIsBetter: true };
  return { value: r.gflops ?? null, unit: 'GFLOP/s', higherIsBetter: true };
}

export function sameMachine(a: HostInfo | undefined, b: HostInfo | undefined): boolean {
  if (!a || !b) return false;
  return a.cpuModel === b.cpuModel && a.cores === b.cores && (a.gpu ?? null) === (b.gpu ?? null);
}

export function describeRecord(r: BenchRecord): string {
  const fw = r.framework ? ` [${r.framework.split(' ')[0]}]` : '';
  if (r.kind === 'model') return `${r.name} ${r.mode} b${r.batch} ${r.precision} ${r.data}/${r.loading}${fw}`;
  if (r.kind === 'layer') return `${r.name} ${r.layer?.pass ?? ''} b${r.batch}`;
  return `${r.name} ${r.label ?? JSON.stringify(r.shape)}${fw}`;
}

function lastByKey(lines: ResultLine[]): Map<string, BenchRecord> {
  const m = new Map<string, BenchRecord>();
  for (const r of lines) if (r.kind !== 'missing') m.set(recordKey(r), r);
  return m;
}

export function compareRecords(a: BenchRecord | null, b: BenchRecord | null): Omit<CompareRow, 'key'> {
  const r = (a ?? b)!;
  const ha = a ? headlineValue(a) : null, hb = b ? headlineValue(b) : null;
  const unit = (ha ?? hb)!.unit;
  const va = ha?.value ?? null, vb = hb?.value ?? null;
  let ratio: number | null = null;
  if (va !== null && vb !== null && va > 0 && vb > 0) ratio = (ha ?? hb)!.higherIsBetter ? vb / va : va / vb;
  const medianDiff = a && b ? Math.abs(b.timing.medianMs / a.timing.medianMs - 1) : null;
  let flag: CompareRow['flag'] = '';
  const why: string[] = [];
  if (medianDiff !== null && medianDiff > AGREE_WITHIN) {
    const same = sameMachine(a!.host, b!.host);
    flag = same ? 'noisy' : 'differs';
    why.push(`medians differ by ${(medianDiff * 100).toFixed(1)} % (> ${AGREE_WITHIN * 100} %)${same ? ' on the same machine' : ' across machines'}`);
  }
  for (const [n, x] of [['A', a], ['B', b]] as const) {
    if (x?.timing.noisy) {
      flag = 'noisy';
      why.push(`${n}: p10-p90 spread ${(((x.timing.p90Ms - x.timing.p10Ms) / x.timing.medianMs) * 100).toFixed(0)} % of the median`);
    }
  }
  return { kind: r.kind, name: r.name, label: describeRecord(r), unit, a, b, va, vb, ratio, medianDiff, flag, why: why.join('; ') };
}

/** Rows for every key in either file, in A's order then B's new keys. */
export function compareRuns(a: ResultLine[], b: ResultLine[]): CompareRow[] {
  const ma = lastByKey(a), mb = lastByKey(b);
  const keys = [...ma.keys(), ...[...mb.keys()].filter((k) => !ma.has(k))];
  return keys.map((key) => ({ key, ...compareRecords(ma.get(key) ?? null, mb.get(key) ?? null) }));
}

function hostLine(lines: ResultLine[]): string {
  const r = lines.find((x): x is BenchRecord => x.kind !== 'missing' && !!x.host?.cpuModel);
  if (!r) return 'unknown host';
  const h = r.host;
  return `${h.cpuModel}, ${h.cores} cores${h.gpu ? `, ${h.gpu}` : ''}; imagerate ${r.imagerate?.version ?? '?'} (${r.imagerate?.commit ?? 'no commit'}), ${r.date.slice(0, 10)}`;
}

function fmtValue(v: number | null, unit: string): string {
  if (v === null) return '-';
  return unit === 'ms' ? v.toFixed(3) : v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/** The plain-text table `imagerate compare` prints. */
export function formatCompareTable(allRows: CompareRow[], names: [string, string], hosts: [ResultLine[], ResultLine[]], opts: { all?: boolean } = {}): string {
  const rows = opts.all ? allRows : allRows.filter((r) => r.a && r.b);
  const head = ['benchmark', 'unit', 'A', 'B', 'B/A', 'flag'];
  const body = rows.map((r) => [r.label, r.unit, fmtValue(r.va, r.unit), fmtValue(r.vb, r.unit), r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`, r.flag]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === 5 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const matched = allRows.filter((r) => r.a && r.b);
  const flagged = rows.filter((r) => r.flag);
  return [
    `A: ${names[0]}: ${hostLine(hosts[0])}`,
    `B: ${names[1]}: ${hostLine(hosts[1])}`,
    '',
    ...(rows.length ? [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)]
      : ['No benchmark appears in both files (same kind, model or kernel, shape, batch, mode and precision), so there is nothing to compare.']),
    '',
    `${matched.length} figures in both, ${allRows.length - matched.length} in one only${opts.all ? '' : ' (--all lists them)'}. B/A > 1: B is faster (throughput ratio; for layer times, A time / B time).`,
    `flag: 'noisy' = two runs on the same machine disagree by more than ${AGREE_WITHIN * 100} % on medians, or a run's own p10-p90 spread is over 10 % of its median; 'differs' = more than ${AGREE_WITHIN * 100} % apart across different machines.`,
    ...flagged.map((r) => `  ${r.label}: ${r.why}`),
  ].join('\n');
}
