// The machine a benchmark ran on, for every record (DESIGN.md "What every figure carries"),
// and the CPU's fp32 peak estimate that "% of peak" is measured against.
//
// Peak (fp32, FLOP/s) = cores x SIMD lanes x 2 (an FMA is two FLOPs) x FMA units x clock:
//   - lanes: 8 with AVX2 (256-bit), else 4 (SSE2/NEON 128-bit);
//   - FMA units: 2 on AVX2-era big cores (Zen 1-4, Haswell and later). Without FMA the
//     estimate counts one add pipe and one multiply pipe as "2 units of 1 FLOP";
//   - AVX-512 is not counted: Zen 4 runs it on the same two 256-bit pipes, and our kernels
//     are AVX2. On a CPU with two 512-bit FMA units the true peak is twice this (said in `note`);
//   - clock: measured (the addon's cpuClockGhz, a dependent-add chain) when the caller passes it,
//     else /proc/cpuinfo "cpu MHz", else os.cpus() speed. Under a hypervisor "cpu MHz" is the
//     nominal clock; a busy core boosts above it, which would put achieved GFLOP/s over 100 %
//     of a nominal-clock peak. `clockSource` says which one was used.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { VERSION, gitCommit } from '../util/version.js';
import { UserError } from '../util/errors.js';

export type ClockSource = 'measured' | 'cpuinfo-mhz' | 'os.cpus' | 'unknown';

export interface CpuPeak {
  /** fp32 GFLOP/s for all `cores`, or null when no clock is known. */
  gflops: number | null;
  /** fp32 GFLOP/s of one core (gflops / cores). */
  perCoreGflops: number | null;
  cores: number;
  simdLanes: number;
  fmaUnits: number;
  clockGhz: number | null;
  clockSource: ClockSource;
  formula: string;
  note?: string;
}

export interface HostInfo {
  cpuModel: string;
  cores: number;
  cpuFlags: { avx2: boolean; fma: boolean; avx512f: boolean };
  memoryBytes: number;
  os: string;
  node: string;
  gpu: string | null;
  gpuDriver: string | null;
  cpuPeak: CpuPeak;
}

export interface ImagerateInfo {
  version: string;
  commit: string | null;
}

export function imagerateInfo(): ImagerateInfo {
  return { version: VERSION, commit: gitCommit() };
}

interface CpuInfoFile {
  model: string | null;
  mhz: number | null;
  flags: Set<string>;
}

function readCpuInfo(): CpuInfoFile {
  const out: CpuInfoFile = { model: null, mhz: null, flags: new Set() };
  if (!existsSync('/proc/cpuinfo')) return out;
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'model name' && out.model === null) out.model = value;
    else if (key === 'cpu MHz' && out.mhz === null && Number(value) > 0) out.mhz = Number(value);
    else if (key === 'flags' && out.flags.size === 0) for (const f of value.split(/\s+/)) out.flags.add(f);
  }
  return out;
}

export interface HostOptions {
  /** A measured core clock (GHz), e.g. from the CPU addon's cpuClockGhz(); preferred when finite. */
  measuredClockGhz?: number | null;
  /** Override the SIMD width / FMA unit count used for the peak (e.g. from the addon's info()). */
  simdLanes?: number;
  fmaUnits?: number;
}

export function cpuPeak(cores: number, flags: HostInfo['cpuFlags'], clock: { ghz: number | null; source: ClockSource },
  opts: HostOptions = {}): CpuPeak {
  const hasFma = flags.avx2 && flags.fma;
  const simdLanes = opts.simdLanes ?? (flags.avx2 ? 8 : 4);
  const fmaUnits = opts.fmaUnits ?? (hasFma ? 2 : 1);
  const perCycle = simdLanes * 2 * fmaUnits;
  const perCore = clock.ghz === null ? null : perCycle * clock.ghz;
  const ghzText = clock.ghz === null ? '? GHz' : `${clock.ghz.toFixed(3)} GHz (${clock.source})`;
  const peak: CpuPeak = {
    gflops: perCore === null ? null : perCore * cores,
    perCoreGflops: perCore,
    cores,
    simdLanes,
    fmaUnits,
    clockGhz: clock.ghz,
    clockSource: clock.source,
    formula: `${cores} cores x ${simdLanes} lanes x 2 (FMA) x ${fmaUnits} units x ${ghzText}`,
  };
  if (flags.avx512f) {
    peak.note = 'AVX-512 present but not counted (peak of 256-bit FMA); a core with two 512-bit FMA units has twice this';
  }
  if (!hasFma) peak.note = 'no FMA: counted as one add + one multiply pipe';
  return peak;
}

/** Describe this machine. Pure reads (no benchmarking), cheap enough to call per record. */
export function describeHost(opts: HostOptions = {}): HostInfo {
  const info = readCpuInfo();
  const cpus = os.cpus();
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length;
  const cpuFlags = {
    avx2: info.flags.has('avx2'),
    fma: info.flags.has('fma'),
    avx512f: info.flags.has('avx512f'),
  };
  let clock: { ghz: number | null; source: ClockSource } = { ghz: null, source: 'unknown' };
  const speedMhz = cpus.length > 0 ? cpus[0].speed : 0;
  if (opts.measuredClockGhz != null && Number.isFinite(opts.measuredClockGhz) && opts.measuredClockGhz > 0) {
    clock = { ghz: opts.measuredClockGhz, source: 'measured' };
  } else if (info.mhz !== null) {
    clock = { ghz: info.mhz / 1000, source: 'cpuinfo-mhz' };
  } else if (speedMhz > 0) {
    clock = { ghz: speedMhz / 1000, source: 'os.cpus' };
  }
  return {
    cpuModel: info.model ?? cpus[0]?.model ?? 'unknown',
    cores,
    cpuFlags,
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    gpu: null,
    gpuDriver: null,
    cpuPeak: cpuPeak(cores, cpuFlags, clock, opts),
  };
}

let measuredClock: number | null | undefined;

/**
 * describeHost() with the clock measured by the CPU addon (cpuClockGhz: a dependent-add chain,
 * ~30 ms, once per process) when the backend is the CPU addon, as the GEMM benchmark does, so
 * that "% of peak" is against the clock the cores actually ran at (boost included).
 */
export function describeBackendHost(be: { name: string; device?: string; emulated?: boolean }): HostInfo {
  // IMAGERATE_BENCH_EMULATOR=1 lets the tests run a benchmark's pipeline on the emulator; its
  // records still name the emulator as the device.
  if (be.emulated && process.env.IMAGERATE_BENCH_EMULATOR !== '1') {
    throw new UserError(`${be.name}: ${be.device ?? 'this device'} is the CPU emulator (IMAGERATE_CUDA_ADDON), which checks ` +
      'correctness only: its timings say nothing about a GPU, so the benchmarks refuse it');
  }
  if (measuredClock === undefined) {
    measuredClock = null;
    if (be.name === 'cpu') {
      try {
        const addon = (be as unknown as { addon?: { cpuClockGhz?: () => number } }).addon;
        const g = addon?.cpuClockGhz?.();
        if (g !== undefined && Number.isFinite(g) && g > 0) measuredClock = g;
      } catch {
        measuredClock = null;
      }
    }
  }
  const host = describeHost({ measuredClockGhz: measuredClock });
  if (be.name !== 'cpu') host.gpu = be.device ?? null;
  return host;
}
