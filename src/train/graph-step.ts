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
// Loss scaling (runScaled): the update waits on the host's look at the gradient check, so the
// step is two graphs: `forward` (forward, loss, backward seeded with the scale, the check) and
// `update` (the gradients times 1/scale, then SGD), replayed only when the gradients are finite.
// The scale is a kernel argument in both (the loss's backward and the unscale), and it changes
// rarely (a dynamic scaler halves it on an overflow and doubles it after 2,000 finite steps), so
// the pair is captured again whenever it changes rather than moved to device memory.
//
// Each step's buffers stay allocated for the graph's lifetime (the addon holds every buffer a
// capture touched, from its first use: native/cuda_graph.cc), so a graph takes more device
// memory than an eager step, which reuses freed buffers within the step.
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

/** Why `--cuda-graph` cannot run on this backend, or null when it can. */
export function cudaGraphRefusal(backend: string): string | null {
  return backend === 'cuda' ? null : `--cuda-graph needs --backend cuda (this run uses ${backend})`;
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
  /** [step] (run), or [forward, update] (runScaled) and the loss scale they were captured at. */
  private graphs: CudaGraph[] = [];
  private capturedScale: number | null = null;
  private loss: Tensor | null = null;
  /** Nodes of the captured graph(s): kernels, copies, memsets, scratch alloc/free (0 before the first step). */
  nodes = 0;
  /** How many times the step was captured (loss scaling: again at every change of the scale). */
  captures = 0;

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
    this.inputs(batch, lr);
    if (this.graphs.length === 0) {
      this.capture(null, (fwd) => fwd(() => {
        this.loss = tidy(() => {
          const loss = this.lossOf();
          backward(loss);
          this.check.record(); // before the update reads (and zeroGrad frees) the gradients
          noGrad(() => this.opt.step(this.lr));
          this.opt.zeroGrad();
          return keep(loss);
        });
      }));
    }
    this.writeSeeds(step);
    this.graphs[0].replay();
    return { loss: this.loss!.data() as Promise<Float32Array>, grads: this.check.read() };
  }

  /**
   * A loss-scaled step at `scale`: replays the forward graph (forward, backward seeded with the
   * scale, the check); `update()` then replays the unscale + SGD graph, for finite gradients only.
   */
  runScaled(batch: Batch, lr: number, step: number, scale: number): GraphStepResult & { update(): void } {
    this.inputs(batch, lr);
    if (this.graphs.length === 0 || this.capturedScale !== scale) {
      this.capture(scale, (fwd) => {
        fwd(() => {
          this.loss = tidy(() => {
            const loss = this.lossOf();
            backward(loss, scale);
            this.check.record();
            // The gradients outlive this scope: the update graph reads them.
            return { loss: keep(loss), grads: this.opt.params.flatMap((p) => (p.grad ? [p.grad] : [])) };
          }).loss;
        });
        fwd(() => {
          noGrad(() => this.opt.step(this.lr, scale));
          this.opt.zeroGrad();
        });
      });
    }
    this.writeSeeds(step);
    const [forward, update] = this.graphs;
    forward.replay();
    return { loss: this.loss!.data() as Promise<Float32Array>, grads: this.check.read(), update: () => update.replay() };
  }

  private lossOf(): Tensor {
    return softmaxCrossEntropy(this.model.forward(this.x), this.y, this.labelSmoothing).loss;
  }

  private inputs(batch: Batch, lr: number): void {
    const [n, c, h, w] = this.shape;
    if (batch.size !== n) throw new Error(`GraphStep: a captured step takes batches of ${n}, got ${batch.size}`);
    this.be.upload(this.x.buf, batch.x.subarray(0, n * c * h * w));
    this.be.upload(this.y.buf, batch.y.subarray(0, n));
    this.be.upload(this.lr, Float32Array.of(lr));
  }

  private writeSeeds(step: number): void {
    for (const s of this.seeds) this.be.upload(s.buf, Int32Array.of(s.seedOf(step) | 0));
  }

  /**
   * Replaces the graphs with those `make` captures, in order, at loss scale `scale` (null:
   * unscaled); `make` gets `fwd(fn)`, which captures one. Dropout layers get their seed buffers
   * during it (layers.ts, DeviceSeeds).
   */
  private capture(scale: number | null, make: (fwd: (fn: () => void) => void) => void): void {
    this.releaseGraphs();
    this.opt.createState(); // before the capture: zero fills inside it would replay every step
    setDeviceSeeds({
      seedBuffer: (seedOf) => {
        const buf = this.be.alloc(4);
        this.seeds.push({ buf, seedOf });
        return buf;
      },
    });
    const made: CudaGraph[] = [];
    try {
      make((fn) => { made.push(this.be.captureGraph(fn)); });
      this.graphs = made;
      this.capturedScale = scale;
      this.nodes = made.reduce((sum, g) => sum + g.nodes, 0);
      this.captures++;
    } catch (e) {
      for (const g of made) g.dispose();
      this.opt.zeroGrad(); // a forward graph without its update leaves gradients behind
      this.loss?.dispose();
      this.loss = null;
      throw e;
    } finally {
      setDeviceSeeds(null);
    }
  }

  /** Destroys the graphs and what only they used (the loss tensor, the dropout seed buffers). */
  private releaseGraphs(): void {
    for (const g of this.graphs) g.dispose();
    this.graphs = [];
    this.loss?.dispose();
    this.loss = null;
    for (const s of this.seeds) this.be.free(s.buf);
    this.seeds.length = 0;
  }

  dispose(): void {
    this.releaseGraphs();
    this.x.dispose();
    this.y.dispose();
    this.be.free(this.lr);
  }
}
