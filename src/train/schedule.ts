// Learning-rate schedules. The CLI's --lr is the base rate for a batch of 64; the rate used is
// scaled linearly with the batch size (Goyal et al. 2017): lr = base * batch / 64. The schedule
// then warms up linearly over the first `warmupSteps` and decays with a half cosine to zero
// at the end of the planned run.
export const LR_REFERENCE_BATCH = 64;

export function scaledLr(baseLr: number, batch: number): number {
  return (baseLr * batch) / LR_REFERENCE_BATCH;
}

export interface Schedule {
  readonly kind: string;
  lr(step: number): number;
}

export function warmupCosine(peak: number, totalSteps: number, warmupSteps: number): Schedule {
  return {
    kind: `linear warm-up ${warmupSteps} steps, cosine decay over ${totalSteps} steps`,
    lr(step: number): number {
      if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
      const t = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
      return 0.5 * peak * (1 + Math.cos(Math.PI * t));
    },
  };
}

export function constant(peak: number): Schedule {
  return { kind: 'constant', lr: () => peak };
}
