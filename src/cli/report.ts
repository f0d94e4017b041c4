// `imagerate report <files...> --html out.html`: a self-contained HTML report (src/report/html.ts)
// of one or more JSONL record files; with two or more, a run-vs-run comparison section too.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command } from 'commander';
import { readRecords } from '../bench/record.js';
import { buildReport } from '../report/html.js';
import { headlineMarkdown } from '../report/headlines.js';
import { UserError } from '../util/errors.js';

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('HTML report (tables, img/s vs batch, kernel roofline, per-layer breakdown, run comparison) from JSONL record files; works offline')
    .argument('<files...>', 'JSONL record files (from imagerate bench ... --out, or bench all)')
    .option('--html <file>', 'write the HTML report here')
    .option('--markdown <file>', "write the headline table (ours vs the frameworks) as Markdown here ('-': stdout)")
    .option('--title <text>', 'page title')
    .action((files: string[], o: { html?: string; markdown?: string; title?: string }) => {
      if (!o.html && !o.markdown) throw new UserError('report: give --html <file> and/or --markdown <file>');
      const inputs = files.map((file) => {
        if (!existsSync(file)) throw new UserError(`${file}: no such file`);
        try {
          return { file, records: readRecords(file) };
        } catch (e) {
          throw new UserError((e as Error).message);
        }
      });
      const n = inputs.reduce((s, i) => s + i.records.length, 0);
      if (o.html) {
        mkdirSync(dirname(o.html), { recursive: true });
        writeFileSync(o.html, buildReport(inputs, { title: o.title }));
        process.stderr.write(`report of ${n} records from ${files.length} file(s) written to ${o.html}\n`);
      }
      if (o.markdown) {
        const md = headlineMarkdown(inputs[inputs.length - 1].records);
        if (o.markdown === '-') process.stdout.write(md);
        else writeFileSync(o.markdown, md);
      }
    });
}
