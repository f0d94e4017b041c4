#!/usr/bin/env python3
"""ONNX Runtime CPU inference baseline: the same network as imagerate's model, exported from
the PyTorch definition in pytorch_cpu.py (identical layer sizes; random weights, which do not
change the speed), run by onnxruntime's CPU execution provider with a fixed thread count.

  python3 bench/baselines/onnxruntime_cpu.py --model resnet50 --batch 16 --threads 2

Prints one record in imagerate's JSONL format (framework = "onnxruntime <ver>"). Needs torch,
onnx and onnxruntime; imagerate never depends on them.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_cpu as pt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='resnet50', choices=sorted(pt.MODELS))
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--iters', type=int, default=20)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--out')
    a = ap.parse_args()
    torch.manual_seed(0)
    model = pt.MODELS[a.model]().eval()
    shape = (a.batch, *pt.INPUTS.get(a.model, (1, 28, 28)))
    x = torch.randn(*shape)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'model.onnx')
        torch.onnx.export(model, (x,), path, input_names=['x'], output_names=['y'], opset_version=17, dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    xn = x.numpy()
    times = []
    for i in range(a.warmup + a.iters):
        t0 = time.perf_counter()
        sess.run(None, {'x': xn})
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    rec = pt.record(a.model, a.batch, a.threads, times, {'warmup': a.warmup, 'mode': 'inference'})
    rec['framework'] = f'onnxruntime {ort.__version__}'
    rec['notes'] = 'ONNX Runtime CPU EP, graph exported from the PyTorch definition of the same network (opset 17), all graph optimisations on'
    line = json.dumps(rec)
    if a.out:
        with open(a.out, 'a') as f:
            f.write(line + '\n')
    print(line)


if __name__ == '__main__':
    main()
