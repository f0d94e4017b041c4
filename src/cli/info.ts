// `imagerate info` (backends and this machine) and `imagerate models`.
import { Command } from 'commander';
import Table from 'cli-table3';
import { backendAvailability } from '../backend/registry.js';
import { probeCuda } from '../backend/cuda.js';
import { loadCpuAddon } from '../backend/cpu.js';
import { MODELS } from '../models/index.js';
import { VERSION, gitCommit } from '../util/version.js';

export function registerInfoCommands(program: Command): void {
  program
    .command('info')
    .description('show the backends available on this machine, and why the others are not')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const avail = await backendAvailability();
      let cpu: Record<string, unknown> | null = null;
      try {
        cpu = loadCpuAddon().info();
      } catch {
        cpu = null;
      }
      const info = { imagerate: VERSION, commit: gitCommit(), node: process.version, cpu, cuda: probeCuda(), backends: avail };
      if (o.json) {
        process.stdout.write(JSON.stringify(info) + '\n');
        return;
      }
      const t = new Table({ head: ['backend', 'status'], style: { head: [], border: [] } });
      for (const b of avail) t.push([b.name, b.available ? `available: ${b.device}` : `unavailable: ${b.reason}`]);
      process.stdout.write(`imagerate ${VERSION}${info.commit ? ` (${info.commit})` : ''}, node ${process.version}\n`);
      if (cpu) process.stdout.write(`cpu: ${cpu.cpuModel}, ${cpu.hwThreads} hardware threads, GEMM ISA ${cpu.isa}, addon built by ${cpu.addon}\n`);
      process.stdout.write(t.toString() + '\n');
    });

  program
    .command('models')
    .description('list the models')
    .action(() => {
      const t = new Table({ head: ['model', 'input', 'classes', 'description'], style: { head: [], border: [] } });
      for (const m of Object.values(MODELS)) t.push([m.name, m.input.join('x'), m.numClasses, m.description]);
      process.stdout.write(t.toString() + '\n');
    });
}
