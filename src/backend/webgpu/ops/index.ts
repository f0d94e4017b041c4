// The op table of the webgpu backend: each family module maps op names to glue functions that
// check buffer sizes and enqueue kernels/wgsl dispatches. An op missing here is reported as
// "not implemented on webgpu: <op>" and is absent from the backend's `ops` set.
import type { Backend, OpName } from '../../backend.js';
import type { Dispatcher } from '../runtime.js';
import { pointwiseOps } from './pointwise.js';
import { poolOps } from './pool.js';
import { reduceOps } from './reduce.js';
import { dropoutOps } from './dropout.js';
import { lossOps } from './loss.js';
import { sgdOps } from './sgd.js';
import { normOps } from './norm.js';
import { gemmOps } from './gemm.js';
import { convOps } from './conv.js';

export type OpImpls = { [K in OpName]: (d: Dispatcher, ...args: Parameters<Backend[K]>) => void };

export const OP_IMPLS: Partial<OpImpls> = {
  ...pointwiseOps,
  ...poolOps,
  ...reduceOps,
  ...dropoutOps,
  ...lossOps,
  ...sgdOps,
  ...normOps,
  ...gemmOps,
  ...convOps,
};
