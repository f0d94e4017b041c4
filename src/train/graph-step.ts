// graph-step.ts: `train --cuda-graph`: the training step (forward, loss, backward, gradient
// check and SGD update) is captured once into a CUDA graph and replayed for every batch, so a
// small net no longer pays one kernel launch per op from the host (docs/gpu.md, "CUDA graphs").
//
// A replay re-runs every kernel with the arguments and buffers it was captured with. What
// changes from step to step therefore lives in device buffers that the host rewrites, in stream
// order, before each replay:
//   - the batch: fixed input and label tensors, uploaded into;
//   - the learning rate: one float, read by the SGD kernels (sgdUpdateDeviceLr);
//   - each Dropout's mask seed: one uint32 per layer (dropoutFwdDeviceSeed), the value the eager
//     loop would pass for that step (layers.ts, DeviceSeeds).
// The loss and the gradient check's results are read back after each replay, as in the eager
// loop, so divergence is caught at the same step. With the same seed the run is the eager run:
// a test compares their losses and final weights bit for bit (test/train/cuda-graph.test.ts).
//
// Not captured: loss scaling (the update depends on a host decision after the gradient check),
// so --cuda-graph refuses it. Each step's buffers stay allocated for the graph's lifetime (the
// addon holds every buffer a capture touched, from its first use: native/cuda_graph.cc), so the
// graph takes more device memory than an eager step, which reuses freed buffers within the step.
import type { BufferHandle } from '../backend/backend.js';
import type { CudaBackend, CudaGraph } from '../backend/cuda.js';
import { Tensor } from '../tensor.js';
import { keep, tidy } from '../autograd/scope.js';
import { backward, noGrad } from '../autograd/tape.js';
import { softmaxCrossEntropy } from '../ops/loss.js';
import type { Module } from '../nn/module.js';
import { setDeviceSeeds } from '../nn/layers.js';
import type { GradientCheck } from '../autograd/finite.js';
import type { Batch } from '../data/loader.js';
import type { Sgd } from './sgd.js';
import type { LossScaleMode } from './loss-scale.js';

/** Why `--cuda-graph` cannot run with this backend and loss scaling, or null when it can. */
export function cudaGraphRefusal(backend: string, lossScale: LossScaleMode): string | null {
  if (backend !== 'cuda') return `--cuda-graph needs --backend cuda (this run uses ${backend})`;
  if (lossScale !== 'none') return '--cuda-graph cannot capture a loss-scaled step (its update waits on a host decision): use --loss-scale none, or drop --cuda-graph';
  return null;
}

export interface GraphStepResult {
  /** The step's loss (one float), downloaded after the replay. */
  loss: Promise<Float32Array>;
  /** The gradient check's results (GradientCheck.decode). */
  grads: Promise<ArrayBuffer>;
}

export class GraphStep {
  private readonly x: Tensor;
  private readonly y: Tensor;
  private readonly lr: BufferHandle;
  private readonly seeds: { buf: BufferHandle; seedOf: (step: number) => number }[] = [];
  private graph: CudaGraph | null = null;
  private loss: Tensor | null = null;
  /** Kernel and copy nodes of the captured graph (0 before the first step). */
  nodes = 0;

  /** `shape`: the batch's [N, C, H, W]; every step must bring exactly that many images. */
  constructor(private readonly be: CudaBackend, private readonly model: Module, private readonly opt: Sgd,
    private readonly check: GradientCheck, private readonly shape: readonly [number, number, number, number],
    private readonly labelSmoothing: number) {
    this.x = keep(Tensor.empty(be, [...shape]));
    this.y = keep(Tensor.empty(be, [shape[0]], 'int32'));
    this.lr = be.alloc(4);
  }

  /** Runs training step `step` on `batch` at learning rate `lr`: capture on the first call, then a replay. */
  run(batch: Batch, lr: number, step: number): GraphStepResult {
    const [n, c, h, w] = this.shape;
    if (batch.size !== n) throw new Error(`GraphStep: a captured step takes batches of ${n}, got ${batch.size}`);
    const be = this.be;
    be.upload(this.x.buf, batch.x.subarray(0, n * c * h * w));
    be.upload(this.y.buf, batch.y.subarray(0, n));
    be.upload(this.lr, Float32Array.of(lr));
    if (!this.graph) this.capture();
    for (const s of this.seeds) be.upload(s.buf, Int32Array.of(s.seedOf(step) | 0));
    this.graph!.replay();
    return { loss: this.loss!.data() as Promise<Float32Array>, grads: this.check.read() };
  }

  private capture(): void {
    this.opt.createState(); // before the capture: zero fills inside it would replay every step
    setDeviceSeeds({
      seedBuffer: (seedOf) => {
        const buf = this.be.alloc(4);
        this.seeds.push({ buf, seedOf });
        return buf;
      },
    });
    try {
      this.graph = this.be.captureGraph(() => {
        this.loss = tidy(() => {
          const loss = softmaxCrossEntropy(this.model.forward(this.x), this.y, this.labelSmoothing).loss;
          backward(loss);
          this.check.record(); // before the update reads (and zeroGrad frees) the gradients
          noGrad(() => this.opt.step(this.lr));
          this.opt.zeroGrad();
          return keep(loss);
        });
      });
      this.nodes = this.graph.nodes;
    } catch (e) {
      this.loss?.dispose();
      this.loss = null;
      throw e;
    } finally {
      setDeviceSeeds(null);
    }
  }

  dispose(): void {
    this.graph?.dispose();
    this.graph = null;
    this.loss?.dispose();
    this.loss = null;
    this.x.dispose();
    this.y.dispose();
    this.be.free(this.lr);
    for (const s of this.seeds) this.be.free(s.buf);
    this.seeds.length = 0;
  }
}
