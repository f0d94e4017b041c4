// Loss scaling for reduced-precision training (--loss-scale; docs/reliability.md, "Numerical
// failure").
//
// With --precision fp16 the GEMM/conv kernels convert their fp32 operands to fp16, where
// gradient values below ~6e-8 flush to zero. Seeding backward() with a scale S multiplies every
// gradient by S, lifting them into fp16's range; the gradients are divided by S again (in fp32)
// before the SGD update, so the weights (fp32 master copies) see the true gradient.
//
//   none      no scaling (S = 1); the training loop stays pipelined
//   static    a fixed S (--loss-scale <number>)
//   dynamic   PyTorch GradScaler semantics (--loss-scale dynamic[:<initial scale>]): S starts at
//             2^16; a step whose gradients hold a NaN/Inf is skipped (no update, gradients
//             discarded) and S is halved; after `growthInterval` (2000) consecutive finite steps
//             S is doubled
//
// In both scaled modes a step with non-finite gradients is skipped. More than
// MAX_CONSECUTIVE_SKIPS skips in a row, or a scale below MIN_SCALE, means the gradients are
// not finite at any scale: the loop then stops with a DivergenceError (exhausted()).
//
// The state (scale, finite steps since the last change, skipped steps, skips in a row) is a
// plain JSON object saved in checkpoints (src/train/checkpoint.ts), so a resumed run continues
// with the same scale.
import { UserError } from '../util/errors.js';

export type LossScaleMode = 'none' | 'static' | 'dynamic';

/** What --loss-scale asked for. */
export interface LossScaleSpec {
  mode: LossScaleMode;
  /** The scale of the first step (1 for none). */
  initScale: number;
  /** Dynamic: finite steps in a row before the scale grows. */
  growthInterval: number;
  growthFactor: number;
  backoffFactor: number;
}

/** The scaler's state, as checkpoints store it. */
export interface LossScaleState {
  mode: LossScaleMode;
  scale: number;
  /** Finite steps since the scale last changed (dynamic: grows at growthInterval). */
  goodSteps: number;
  /** Steps skipped in all because their gradients were not finite. */
  skippedSteps: number;
  /** Steps skipped in a row, up to the last one. */
  consecutiveSkips: number;
}

export const DEFAULT_INIT_SCALE = 2 ** 16;
export const DEFAULT_GROWTH_INTERVAL = 2000;
/** More skips in a row than this stop training (the gradients are not finite at any scale). */
export const MAX_CONSECUTIVE_SKIPS = 20;
/** A dynamic scale below this (fp16's smallest subnormal) stops training too. */
export const MIN_SCALE = 2 ** -24;
/** The largest float32: kernels take the scale as one, so no scale may exceed it. */
export const FP32_MAX = 3.4028234663852886e38;

export const NO_LOSS_SCALE: LossScaleSpec = { mode: 'none', initScale: 1, growthInterval: DEFAULT_GROWTH_INTERVAL, growthFactor: 2, backoffFactor: 0.5 };

function dynamic(initScale = DEFAULT_INIT_SCALE): LossScaleSpec {
  return { mode: 'dynamic', initScale, growthInterval: DEFAULT_GROWTH_INTERVAL, growthFactor: 2, backoffFactor: 0.5 };
}

/** A number in (0, FP32_MAX] written as a decimal ("1024", "1e4") or a power of two ("2^16"); NaN otherwise. */
function parseScale(s: string): number {
  const pow = /^2\^(-?\d+)$/.exec(s.trim());
  const v = pow ? 2 ** Number(pow[1]) : s.trim() === '' ? NaN : Number(s);
  return v > 0 && v <= FP32_MAX ? v : NaN;
}

/**
 * Parses --loss-scale: `none`, `dynamic`, `dynamic:<initial scale>` or a fixed `<scale>`.
 * Undefined gives the default: dynamic with --precision fp16, none otherwise.
 */
export function parseLossScale(value: string | undefined, precision: string): LossScaleSpec {
  if (value === undefined) return precision === 'fp16' ? dynamic() : NO_LOSS_SCALE;
  const v = value.trim();
  if (v === 'none') return NO_LOSS_SCALE;
  if (v === 'dynamic') return dynamic();
  const fail = (): never => {
    throw new UserError(`--loss-scale must be dynamic, dynamic:<initial scale>, none or a scale in (0, 2^127] (e.g. 1024 or 2^10), got '${value}'`);
  };
  if (v.startsWith('dynamic:')) {
    const init = parseScale(v.slice('dynamic:'.length));
    return Number.isNaN(init) ? fail() : dynamic(init);
  }
  const fixed = parseScale(v);
  if (Number.isNaN(fixed)) fail();
  return { ...NO_LOSS_SCALE, mode: 'static', initScale: fixed };
}

/** A scale as people write it: "2^16" for a power of two, else 4 significant digits. */
export function fmtScale(scale: number): string {
  const k = Math.log2(scale);
  return Number.isInteger(k) ? `2^${k}` : scale.toPrecision(4);
}

/** One line for summaries: "dynamic (initial 2^16, x2 after 2000 finite steps, x0.5 on overflow)". */
export function describeLossScale(spec: LossScaleSpec): string {
  if (spec.mode === 'none') return 'none';
  if (spec.mode === 'static') return `static ${fmtScale(spec.initScale)}`;
  return `dynamic (initial ${fmtScale(spec.initScale)}, x${spec.growthFactor} after ${spec.growthInterval} finite steps, x${spec.backoffFactor} on overflow)`;
}

export class DynamicLossScaler {
  private st: LossScaleState;

  constructor(readonly spec: LossScaleSpec) {
    if (spec.mode === 'none') throw new Error('DynamicLossScaler: mode none has no scaler');
    this.st = { mode: spec.mode, scale: spec.initScale, goodSteps: 0, skippedSteps: 0, consecutiveSkips: 0 };
  }

  /** The scale backward() is seeded with this step. */
  get scale(): number {
    return this.st.scale;
  }

  get skippedSteps(): number {
    return this.st.skippedSteps;
  }

  get consecutiveSkips(): number {
    return this.st.consecutiveSkips;
  }

  /**
   * Records one step's gradient check. Finite: the step is taken ('step') and, in dynamic
   * mode, the scale grows after growthInterval finite steps in a row. Not finite: the step is
   * skipped ('skip') and, in dynamic mode, the scale backs off.
   */
  update(finite: boolean): 'step' | 'skip' {
    const s = this.st, spec = this.spec;
    if (finite) {
      s.consecutiveSkips = 0;
      if (spec.mode === 'dynamic' && ++s.goodSteps >= spec.growthInterval) {
        const grown = s.scale * spec.growthFactor;
        if (grown <= FP32_MAX) s.scale = grown; // as GradScaler: never grow to Inf (in float32)
        s.goodSteps = 0;
      }
      return 'step';
    }
    s.skippedSteps++;
    s.consecutiveSkips++;
    s.goodSteps = 0;
    if (spec.mode === 'dynamic') s.scale *= spec.backoffFactor;
    return 'skip';
  }

  /** True once skipping cannot help: too many skips in a row, or a scale below MIN_SCALE. */
  exhausted(): boolean {
    return this.st.consecutiveSkips > MAX_CONSECUTIVE_SKIPS || this.st.scale < MIN_SCALE;
  }

  /** A copy of the state, for checkpoints. */
  state(): LossScaleState {
    return { ...this.st };
  }

  /** Continues from a checkpoint's state (same mode; a static scale comes from the option, not the file). */
  restore(saved: LossScaleState): void {
    if (saved.mode !== this.spec.mode) return; // another mode was asked for on resume: start it afresh
    this.st = { ...saved, scale: this.spec.mode === 'static' ? this.spec.initScale : saved.scale };
  }
}

/** True when `v` is a LossScaleState (checkpoint metadata validation). */
export function isLossScaleState(v: unknown): v is LossScaleState {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  const count = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  return (s.mode === 'none' || s.mode === 'static' || s.mode === 'dynamic')
    && typeof s.scale === 'number' && s.scale > 0 && s.scale <= FP32_MAX
    && count(s.goodSteps) && count(s.skippedSteps) && count(s.consecutiveSkips);
}
