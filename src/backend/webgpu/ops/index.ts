// The op table of the webgpu backend: each family module maps op names to glue functions that
// check buffer sizes and enqueue kernels/wgsl dispatches. An op missing here is reported as
// "not implemented on webgpu: <op>" and is absent from the backend's `ops` set.
import type { Backend, OpName } from '../../backend.js';
import type { Dispatcher } from '../runtime.js';
import { pointwiseOps } from './pointwise.js';

export type OpImpls = { [K in OpName]: (d: Dispatcher, ...args: Parameters<Backend[K]>) => void };

export const OP_IMPLS: Partial<OpImpls> = {
  ...pointwiseOps,
};
