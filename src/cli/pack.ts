// `imagerate pack <imagefolder> <out>`: stage 1 of the data pipeline. Decodes every image of
// an ImageFolder once (on worker threads) and writes a packed record file (src/data/records.ts).
// Progress bar on stderr when it is a terminal; one summary line on stdout at the end (or
// one JSON object with --json); warnings about skipped files on stderr.
import { Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import { packImageFolder, parsePackResize, type PackResize } from '../data/records.js';
import { defaultWorkerCount } from '../data/decode.js';

function parseResize(v: string): PackResize {
  try {
    return parsePackResize(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function parseWorkers(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 256) throw new InvalidArgumentError(`--workers expects an integer in [0, 256], got '${v}'`);
  return n;
}

function parseOnError(v: string): 'skip' | 'fail' {
  if (v !== 'skip' && v !== 'fail') throw new InvalidArgumentError(`--on-error expects skip or fail, got '${v}'`);
  return v;
}

function parseChannels(v: string): 1 | 3 {
  if (v !== '1' && v !== '3') throw new InvalidArgumentError(`--channels expects 1 or 3, got '${v}'`);
  return Number(v) as 1 | 3;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

export function registerPackCommand(program: Command): void {
  program
    .command('pack')
    .description('decode an ImageFolder (root/<class>/*.jpg|png) once and write a packed record file for fast training')
    .argument('<imagefolder>', 'ImageFolder root: one sub-directory per class')
    .argument('<out>', 'pack file to write (e.g. data/train.pack); written atomically')
    .option('--resize <N|WxH>', 'resize the shorter side to N (aspect kept; 256 for ImageNet), or to exactly WxH (for small images, e.g. 32x32)', parseResize)
    .option('--workers <n>', `decode worker threads (default: available cores, ${defaultWorkerCount()} here)`, parseWorkers)
    .option('--on-error <skip|fail>', 'a file that cannot be decoded: skip it with a warning, or stop with an error naming it', parseOnError, 'skip')
    .option('--channels <1|3>', 'store RGB (3) or greyscale (1)', parseChannels, 3)
    .option('--json', 'print the summary as one JSON object on stdout')
    .action(async (folder: string, out: string, o: { resize?: PackResize; workers?: number; onError: 'skip' | 'fail'; channels: 1 | 3; json?: boolean }) => {
      const bar = process.stderr.isTTY
        ? new cliProgress.SingleBar({
          format: 'pack |{bar}| {value}/{total} images | {rate} img/s | eta {eta_formatted}',
          stream: process.stderr, hideCursor: true, clearOnComplete: true, etaBuffer: 200,
        }, cliProgress.Presets.shades_classic)
        : null;
      const t0 = performance.now();
      let started = false;
      let lastUpdate = 0;
      const summary = await packImageFolder(folder, out, {
        resize: o.resize ?? null,
        ...(o.workers !== undefined ? { workers: o.workers } : {}),
        onError: o.onError,
        channels: o.channels,
        warn: (m) => {
          if (bar && started) bar.stop();
          process.stderr.write(`imagerate: warning: ${m}\n`);
          started = false;
        },
        onProgress: (done, total) => {
          if (!bar) return;
          const now = performance.now();
          if (!started) {
            bar.start(total, done, { rate: '-' });
            started = true;
          } else if (done === total || now - lastUpdate > 100) {
            bar.update(done, { rate: Math.round(done / ((now - t0) / 1000)) });
            lastUpdate = now;
          }
        },
      });
      if (bar && started) bar.stop();
      const line = `packed ${summary.images} images of ${summary.classes} classes into ${summary.out} (${mib(summary.bytes)})` +
        `${summary.skipped ? `, ${summary.skipped} skipped` : ''} in ${summary.seconds.toFixed(1)} s: ` +
        `${Math.round(summary.imagesPerSecond)} images/s decoded with ${summary.workers} worker${summary.workers === 1 ? '' : 's'}` +
        `${o.resize ? `, resized to ${o.resize.mode === 'shorter' ? `shorter side ${o.resize.size}` : `${o.resize.width}x${o.resize.height}`}` : ''}`;
      if (o.json) {
        process.stderr.write(line + '\n');
        process.stdout.write(JSON.stringify(summary) + '\n');
      } else {
        process.stdout.write(line + '\n');
      }
    });
}
