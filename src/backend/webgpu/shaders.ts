// WGSL sources (kernels/wgsl/*.wgsl), their specialisation step, and the pipeline cache.
//
// A kernel file is plain, valid WGSL. Two things in it are specialised per pipeline:
//   - any module-scope `const NAME: T = <default>;` whose NAME is given in `defines` gets the
//     given value instead (workgroup size, tile shape, transpose flags...). A define that names
//     no constant is an error, so a typo never silently keeps the default;
//   - a line `//!include other.wgsl` is replaced by that file (shared tiles and helpers).
// Code branches on such constants (`if (TRANS_A) {...}`) and the compiler folds them.
//
// Pipelines are cached by (file, entry point, defines): the op glue picks the defines from a
// shape class (tile shape, vector width), so a handful of pipelines serve every layer.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../util/paths.js';

export const WGSL_DIR = join(PACKAGE_ROOT, 'kernels', 'wgsl');

export type Defines = Record<string, number | boolean>;

const sources = new Map<string, string>();

function readKernel(file: string): string {
  let src = sources.get(file);
  if (src === undefined) {
    src = readFileSync(join(WGSL_DIR, file), 'utf8');
    sources.set(file, src);
  }
  return src;
}

function literal(name: string, v: number | boolean, type: string): string {
  if (typeof v === 'boolean') return String(v);
  if (!Number.isFinite(v)) throw new Error(`wgsl define ${name}: ${v} is not a finite number`);
  switch (type) {
    case 'u32':
      if (!Number.isInteger(v) || v < 0) throw new Error(`wgsl define ${name}: ${v} is not a u32`);
      return `${v}u`;
    case 'i32':
      if (!Number.isInteger(v)) throw new Error(`wgsl define ${name}: ${v} is not an i32`);
      return `${v}i`;
    case 'f32':
      return `${Number.isInteger(v) ? v.toFixed(1) : String(v)}f`;
    default:
      throw new Error(`wgsl define ${name}: constant type ${type} cannot be specialised`);
  }
}

/** The specialised source of `file`: includes expanded, defined constants replaced. */
export function specialise(file: string, defines: Defines = {}): string {
  const seen = new Set<string>();
  const expand = (f: string): string => {
    if (seen.has(f)) return '';
    seen.add(f);
    return readKernel(f).replace(/^\s*\/\/!include\s+(\S+)\s*$/gm, (_m, inc: string) => expand(inc));
  };
  let src = expand(file);
  const used = new Set<string>();
  src = src.replace(/^const\s+([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([a-z0-9]+)\s*=\s*([^;]+);/gm, (whole, name: string, type: string) => {
    if (!(name in defines)) return whole;
    used.add(name);
    return `const ${name}: ${type} = ${literal(name, defines[name], type)};`;
  });
  for (const name of Object.keys(defines)) {
    if (!used.has(name)) throw new Error(`wgsl define ${name} matches no \`const ${name}: <type> = ...;\` in ${file}`);
  }
  return src;
}

export function pipelineKey(file: string, entry: string, defines: Defines): string {
  const d = Object.keys(defines).sort().map((k) => `${k}=${defines[k]}`).join(',');
  return `${file}:${entry}${d ? `[${d}]` : ''}`;
}

/** Compiled pipelines of one device, by key. Compile messages are kept for error reports. */
export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  readonly compileErrors = new Map<string, string>();

  constructor(private readonly device: GPUDevice) {}

  get size(): number { return this.pipelines.size; }

  get(file: string, entry: string, defines: Defines = {}): GPUComputePipeline {
    const key = pipelineKey(file, entry, defines);
    let p = this.pipelines.get(key);
    if (p) return p;
    const modKey = pipelineKey(file, '', defines);
    let mod = this.modules.get(modKey);
    if (!mod) {
      mod = this.device.createShaderModule({ code: specialise(file, defines), label: modKey });
      this.modules.set(modKey, mod);
      // Compile messages arrive asynchronously; errors also reach the batch's error scope.
      void mod.getCompilationInfo().then((info) => {
        const errs = info.messages.filter((m) => m.type === 'error');
        if (errs.length) this.compileErrors.set(modKey, errs.map((m) => `${file}:${m.lineNum}:${m.linePos}: ${m.message}`).join('\n'));
      }, () => undefined);
    }
    p = this.device.createComputePipeline({ layout: 'auto', compute: { module: mod, entryPoint: entry }, label: key });
    this.pipelines.set(key, p);
    return p;
  }
}
