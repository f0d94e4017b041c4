// Formatting shared by the report's sections (html.ts, headlines.ts, tables.ts, charts.ts):
// HTML escaping, numbers as the tables print them, and the name a record's framework goes by.
import type { BenchRecord, ResultLine } from '../bench/record.js';

export const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
export const num = (v: number | null | undefined, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '' : v >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(d));
export const fwName = (r: { framework: string | null }) => (r.framework ? r.framework.split(' ')[0] : 'imagerate');

export function isModel(r: ResultLine): r is BenchRecord {
  return r.kind === 'model';
}
