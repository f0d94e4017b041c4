#!/usr/bin/env node
// imagerate command line. User errors (bad options, unknown names, bad files, missing
// devices) print one line `imagerate: error: ...` and exit with status 2; anything else is a
// bug and keeps its stack trace.
import { Command, CommanderError } from 'commander';
import { BackendUnavailableError } from './backend/backend.js';
import { webgpuOpened } from './backend/registry.js';
import { UserError } from './util/errors.js';
import { ImagerateDataError } from './data/dataset.js';
import { registerTrainCommand } from './cli/train.js';
import { registerBenchCommand } from './cli/bench.js';
import { registerInfoCommands } from './cli/info.js';
import { registerPredictCommand } from './cli/predict.js';
import { registerPackCommand } from './cli/pack.js';
import { registerReportCommand } from './cli/report.js';
import { registerCompareCommand } from './cli/compare.js';
import { VERSION } from './util/version.js';

function isUserError(e: unknown): e is Error {
  // WebGpuError: device lost, out of memory, Dawn's validation message; one line, naming the device.
  return e instanceof UserError || e instanceof ImagerateDataError || e instanceof BackendUnavailableError ||
    (e instanceof Error && e.name === 'WebGpuError');
}

/**
 * Dawn keeps pumping events while its instance lives, which can keep the process alive after
 * the command is done (PLATFORM.md). Once a webgpu device was opened, the CLI exits explicitly
 * after stdout and stderr have drained.
 */
function finish(): void {
  if (!webgpuOpened()) return;
  process.stdout.write('', () => process.stderr.write('', () => process.exit()));
}

async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program
    .name('imagerate')
    .description('Measure and train convnets on your own hardware, with hand-written kernels.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    // Commander prints its own message for a malformed option; the exit status is then 2 like
    // every other user error (it would exit 1, the status of an internal error, by itself).
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`imagerate: ${str}`) });
  registerTrainCommand(program);
  registerBenchCommand(program);
  registerInfoCommands(program);
  registerPredictCommand(program);
  registerPackCommand(program);
  registerReportCommand(program);
  registerCompareCommand(program);
  await program.parseAsync(argv);
}

main(process.argv).then(
  () => {
    process.exitCode = process.exitCode ?? 0;
    finish();
  },
  (e: unknown) => {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2; // 0: --help or --version
    } else if (isUserError(e)) {
      process.stderr.write(`imagerate: error: ${e.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`imagerate: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
    finish();
  },
);
