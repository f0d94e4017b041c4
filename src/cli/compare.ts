// `imagerate compare a.jsonl b.jsonl`: the machine-vs-machine (or run-vs-run) table with ratios,
// matching records by (kind, name, mode, batch, precision, data, loading, backend, framework).
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { readRecords } from '../bench/record.js';
import { compareRuns, formatCompareTable } from '../bench/compare.js';
import { UserError } from '../util/errors.js';

export function registerCompareCommand(program: Command): void {
  program
    .command('compare')
    .description('compare two record files (two machines, or a rerun): figures side by side with B/A ratios; flags medians more than 5 % apart')
    .argument('<a>', 'JSONL records, machine or run A')
    .argument('<b>', 'JSONL records, machine or run B')
    .option('--all', 'also list figures present in only one file')
    .option('--json', 'print the rows as JSON lines')
    .action((a: string, b: string, o: { all?: boolean; json?: boolean }) => {
      for (const f of [a, b]) if (!existsSync(f)) throw new UserError(`${f}: no such file`);
      let ra, rb;
      try {
        ra = readRecords(a);
        rb = readRecords(b);
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      const all = compareRuns(ra, rb);
      const rows = all.filter((r) => o.all || (r.a && r.b));
      if (o.json) {
        for (const r of rows) process.stdout.write(JSON.stringify({ key: r.key, label: r.label, unit: r.unit, a: r.va, b: r.vb, ratio: r.ratio, medianDiff: r.medianDiff, flag: r.flag, why: r.why }) + '\n');
        return;
      }
      process.stdout.write(formatCompareTable(all, [a, b], [ra, rb], { all: o.all }) + '\n');
    });
}
