// ONNX export of our model graph (graph.ts) with our weights, written with protobufjs from the
// onnx.proto messages it needs. The schema below is a subset of onnx/onnx.proto (ONNX 1.x,
// proto2 syntax there; the field numbers and types here are copied from it and must not
// change): ModelProto, OperatorSetIdProto, GraphProto, NodeProto, AttributeProto,
// TensorProto, ValueInfoProto, TypeProto(.Tensor), TensorShapeProto(.Dimension),
// StringStringEntryProto. Fields not listed are simply absent from the files we write.
//
// Operators (default domain, opset 13): Conv, Gemm (transB = 1: our Linear keeps W as
// [out, in]), Relu, Add, MaxPool, AveragePool (count_include_pad), GlobalAveragePool + Flatten
// (ours returns [N, C]), Flatten (axis 1; NCHW order, as ours), BatchNormalization (inference:
// running statistics, epsilon), LRN, Dropout (the identity at inference). LRN: ours is
// TensorFlow's (depth radius r, alpha applied to the plain sum of squares); ONNX's divides
// alpha by size = 2r + 1, so alpha_onnx = alpha * (2r + 1).
// The batch dimension of the input and output is symbolic ('N'), so one file serves any batch.
import protobuf from 'protobufjs';
import type { GraphNode, ModelGraph } from './graph.js';

const ONNX_PROTO_SUBSET = `
syntax = "proto2";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; STRINGS = 8; }
  optional string name = 1;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
}
message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
}
message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}
message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
}
message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    optional string denotation = 3;
  }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  optional string denotation = 6;
}
message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

export const ONNX_OPSET = 13;
/** IR version 7 is the one that introduced opset 13 (ONNX 1.8). */
export const ONNX_IR_VERSION = 7;
const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR = { FLOAT: 1, INT: 2, INTS: 7 } as const;

let root: protobuf.Root | null = null;
function schema(): protobuf.Root {
  root ??= protobuf.parse(ONNX_PROTO_SUBSET, { keepCase: true }).root;
  return root;
}

type Attr = { name: string; type: number; f?: number; i?: number; ints?: number[] };
const ints = (name: string, v: number[]): Attr => ({ name, type: ATTR.INTS, ints: v });
const int = (name: string, v: number): Attr => ({ name, type: ATTR.INT, i: v });
const float = (name: string, v: number): Attr => ({ name, type: ATTR.FLOAT, f: v });

interface OnnxNode { name: string; op_type: string; input: string[]; output: string[]; attribute: Attr[] }

function poolAttrs(n: { kernel: [number, number]; stride: [number, number]; pad: [number, number] }): Attr[] {
  const [ph, pw] = n.pad;
  return [ints('kernel_shape', n.kernel), ints('strides', n.stride), ints('pads', [ph, pw, ph, pw])];
}

function toOnnx(n: GraphNode): OnnxNode[] {
  const one = (op_type: string, input: string[], attribute: Attr[] = []): OnnxNode[] => [{ name: n.name, op_type, input, output: [n.output], attribute }];
  switch (n.op) {
    case 'conv': {
      const [ph, pw] = n.pad;
      return one('Conv', [n.inputs[0], n.weight, ...(n.bias ? [n.bias] : [])], [
        ints('kernel_shape', n.kernel), ints('strides', n.stride), ints('pads', [ph, pw, ph, pw]), ints('dilations', n.dilation), int('group', 1),
      ]);
    }
    case 'linear':
      return one('Gemm', [n.inputs[0], n.weight, ...(n.bias ? [n.bias] : [])], [float('alpha', 1), float('beta', 1), int('transA', 0), int('transB', 1)]);
    case 'relu': return one('Relu', n.inputs);
    case 'add': return one('Add', n.inputs);
    case 'flatten': return one('Flatten', n.inputs, [int('axis', 1)]);
    case 'dropout': return one('Dropout', n.inputs);
    case 'maxpool': return one('MaxPool', n.inputs, poolAttrs(n));
    case 'avgpool': return one('AveragePool', n.inputs, [...poolAttrs(n), int('count_include_pad', n.countIncludePad ? 1 : 0)]);
    case 'globalavgpool': {
      const mid = `${n.output}/gap`;
      return [
        { name: `${n.name}/gap`, op_type: 'GlobalAveragePool', input: n.inputs, output: [mid], attribute: [] },
        { name: n.name, op_type: 'Flatten', input: [mid], output: [n.output], attribute: [int('axis', 1)] },
      ];
    }
    case 'batchnorm':
      return one('BatchNormalization', [n.inputs[0], n.weight, n.bias, n.mean, n.var], [float('epsilon', n.eps)]);
    case 'lrn': {
      const size = 2 * n.radius + 1;
      return one('LRN', n.inputs, [int('size', size), float('alpha', n.alpha * size), float('beta', n.beta), float('bias', n.bias)]);
    }
  }
}

function valueInfo(name: string, dims: (number | string)[]) {
  return {
    name,
    type: { tensor_type: { elem_type: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) } } },
  };
}

export interface OnnxExportOptions {
  modelName: string;
  producerVersion?: string;
  doc?: string;
}

/** The ONNX ModelProto bytes of `g`: input 'input' [N, C, H, W], output 'output' [N, ...]. */
export function exportOnnx(g: ModelGraph, o: OnnxExportOptions): Uint8Array {
  const root = schema();
  const nodes = g.nodes.flatMap(toOnnx);
  const last = nodes[nodes.length - 1];
  // The graph's output is named 'output': an Identity keeps the layer names intact.
  nodes.push({ name: 'output', op_type: 'Identity', input: [last.output[0]], output: ['output'], attribute: [] });
  const initializer = [...g.weights].map(([name, w]) => ({
    name, dims: w.shape, data_type: FLOAT,
    raw_data: new Uint8Array(w.data.buffer.slice(w.data.byteOffset, w.data.byteOffset + w.data.byteLength)),
  }));
  const model = {
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    producer_name: 'imagerate',
    producer_version: o.producerVersion ?? '',
    model_version: 1,
    doc_string: o.doc ?? `${o.modelName}, exported by imagerate from its own model graph and weights`,
    graph: {
      name: o.modelName,
      node: nodes,
      initializer,
      input: [valueInfo('input', ['N', ...g.input])],
      output: [valueInfo('output', ['N', ...g.outputShape])],
    },
  };
  const Model = root.lookupType('onnx.ModelProto');
  const err = Model.verify(model);
  if (err) throw new Error(`onnx export: ${err}`);
  return Model.encode(Model.fromObject(model)).finish();
}

/** Decodes ModelProto bytes into a plain object (for tests and `describe`). */
export function decodeOnnx(bytes: Uint8Array): Record<string, unknown> {
  const Model = schema().lookupType('onnx.ModelProto');
  return Model.toObject(Model.decode(bytes), { longs: Number, bytes: Array, defaults: false }) as Record<string, unknown>;
}
