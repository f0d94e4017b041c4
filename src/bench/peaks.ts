// Peaks that "% of peak" is measured against, per backend and precision.
//
// CPU: host.ts cpuPeak(): cores x SIMD lanes x 2 (FMA) x FMA units x clock, fp32 only (the CPU
// backend has no reduced precision). Memory bandwidth: measured by kernel-bench.ts
// (measureCopyBandwidth: the backend's own copy kernel over two 64 MiB buffers, far beyond
// the last-level cache, 8 bytes moved per element: one read, one write).
//
// GPU: a device table of vendor datasheet figures, dense (the "with sparsity" figures are 2x
// and are not used), boost clock, SXM/PCIe form as named. Sources:
//   H100 SXM5 / PCIe: NVIDIA H100 Tensor Core GPU datasheet (2023), "Technical Specifications".
//   H200 SXM:        NVIDIA H200 Tensor Core GPU datasheet (2024).
//   A100 SXM4/PCIe:  NVIDIA A100 Tensor Core GPU datasheet (2021), 40 GB and 80 GB columns.
//   L4:              NVIDIA L4 Tensor Core GPU datasheet (2023).
//   L40S:            NVIDIA L40S GPU datasheet (2023).
//   V100 SXM2:       NVIDIA Tesla V100 GPU datasheet (2020); no TF32/BF16 (Volta).
//   GTX 1080 Ti:     NVIDIA GeForce GTX 1080 Ti specifications (3584 CUDA cores x 1582 MHz
//                    boost x 2 = 11.3 TFLOP/s fp32; 484 GB/s), the GPU of seed 003.
// The datasheets give TF32/BF16/FP16 tensor-core rates with fp32 accumulation for the data
// centre parts. A GPU backend (CUDA, WebGPU) reports its device name; gpuPeak() matches it.
export type Precision = 'fp32' | 'tf32' | 'fp16' | 'bf16';

export interface DevicePeak {
  /** Regular expression matched against the device name the driver reports. */
  match: RegExp;
  name: string;
  /** TFLOP/s by precision; null where the device has no such path. */
  tflops: Record<Precision, number | null>;
  /** Memory bandwidth, GB/s. */
  memGbps: number;
  source: string;
}

export const GPU_PEAKS: readonly DevicePeak[] = [
  { match: /H100.*(SXM|HBM3)/i, name: 'NVIDIA H100 SXM5 80GB', tflops: { fp32: 67, tf32: 494.7, bf16: 989.4, fp16: 989.4 }, memGbps: 3350, source: 'NVIDIA H100 datasheet (SXM column, dense)' },
  { match: /H100.*(PCIe|PCI-E)/i, name: 'NVIDIA H100 PCIe 80GB', tflops: { fp32: 51.2, tf32: 378, bf16: 756, fp16: 756 }, memGbps: 2000, source: 'NVIDIA H100 datasheet (PCIe column, dense)' },
  { match: /H200/i, name: 'NVIDIA H200 SXM 141GB', tflops: { fp32: 67, tf32: 494.7, bf16: 989.4, fp16: 989.4 }, memGbps: 4800, source: 'NVIDIA H200 datasheet (SXM column, dense)' },
  { match: /H100/i, name: 'NVIDIA H100 (form factor unknown; SXM5 figures)', tflops: { fp32: 67, tf32: 494.7, bf16: 989.4, fp16: 989.4 }, memGbps: 3350, source: 'NVIDIA H100 datasheet (SXM column, dense)' },
  { match: /A100.*80\s*GB.*PCIe|A100.*PCIe.*80/i, name: 'NVIDIA A100 PCIe 80GB', tflops: { fp32: 19.5, tf32: 156, bf16: 312, fp16: 312 }, memGbps: 1935, source: 'NVIDIA A100 datasheet (80GB PCIe, dense)' },
  { match: /A100.*80\s*GB|A100-SXM4-80/i, name: 'NVIDIA A100 SXM4 80GB', tflops: { fp32: 19.5, tf32: 156, bf16: 312, fp16: 312 }, memGbps: 2039, source: 'NVIDIA A100 datasheet (80GB SXM, dense)' },
  { match: /A100/i, name: 'NVIDIA A100 40GB', tflops: { fp32: 19.5, tf32: 156, bf16: 312, fp16: 312 }, memGbps: 1555, source: 'NVIDIA A100 datasheet (40GB, dense)' },
  { match: /L40S/i, name: 'NVIDIA L40S', tflops: { fp32: 91.6, tf32: 183, bf16: 362.05, fp16: 362.05 }, memGbps: 864, source: 'NVIDIA L40S datasheet (dense)' },
  { match: /\bL4\b/i, name: 'NVIDIA L4', tflops: { fp32: 30.3, tf32: 60, bf16: 121, fp16: 121 }, memGbps: 300, source: 'NVIDIA L4 datasheet (dense)' },
  { match: /V100/i, name: 'NVIDIA V100 SXM2', tflops: { fp32: 15.7, tf32: null, bf16: null, fp16: 125 }, memGbps: 900, source: 'NVIDIA V100 datasheet (SXM2)' },
  { match: /1080 Ti/i, name: 'NVIDIA GeForce GTX 1080 Ti', tflops: { fp32: 11.3, tf32: null, bf16: null, fp16: null }, memGbps: 484, source: 'NVIDIA GTX 1080 Ti specifications (boost clock)' },
];

/** The table entry for a device name, or null when the device is not in the table. */
export function gpuPeak(deviceName: string | null | undefined): DevicePeak | null {
  if (!deviceName) return null;
  return GPU_PEAKS.find((d) => d.match.test(deviceName)) ?? null;
}

/** GFLOP/s peak of a GPU at a precision; null when unknown or unsupported. */
export function gpuPeakGflops(deviceName: string | null | undefined, precision: Precision): number | null {
  const d = gpuPeak(deviceName);
  const t = d?.tflops[precision];
  return t == null ? null : t * 1000;
}

// Which precisions a backend runs is decided in one place, src/backend/registry.ts.
export { checkPrecision } from '../backend/registry.js';
