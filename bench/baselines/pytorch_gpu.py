#!/usr/bin/env python3
"""PyTorch GPU baseline for imagerate: the kernels and models `imagerate bench --backend cuda`
measures, timed in PyTorch eager (cuBLAS/cuDNN) on the same GPU, written in imagerate's JSONL
record format (src/bench/record.ts BenchRecord; framework = "pytorch <version>").

What it measures (each figure after warm-up, timed with CUDA events around every call/step):
  kernels  square SGEMM 1024/2048/4096/8192 (row-major, C = A @ B) in every precision; the
           GEMM/conv/pool shapes of imagerate's kernel suites: the layers of lenet5, cifar10-tf
           and resnet50 found by running the models (forward hooks, as src/bench/shapes.ts's
           traceForward does) at the suites' batch sizes (lenet 64, cifar 64, resnet50 8), and
           the DeepBench subset of shapes.ts; conv as forward, backward-data and
           backward-filter (aten.convolution_backward with one output each), Linear as its
           three GEMMs (NT forward, NN data gradient, TN weight gradient).
  models   lenet5, cifar10-tf, resnet50 (v1.5) from pytorch_cpu.py, at batch 32/128/256,
           inference (eval, inference_mode) and training (forward + cross-entropy + backward +
           SGD momentum step), synthetic data created once on the GPU.
Precisions (every record says which, and how PyTorch ran it):
  fp32  TF32 off for matmul and cuDNN (torch.backends.*.allow_tf32 = False)
  tf32  TF32 on for both
  bf16  models: torch.autocast(bfloat16); kernels: operands stored in bfloat16
  fp16  models: torch.autocast(float16) (+ GradScaler when training); kernels: float16 operands
imagerate's own bf16/fp16 keep fp32 storage and round operands inside the kernel
(kernels/cuda/kernels.cuh), so a reduced-precision row compares the same math at different
memory traffic; the notes say so.

Modes:
  python3 bench/baselines/pytorch_gpu.py --out results/h100/pytorch.jsonl          everything
  python3 bench/baselines/pytorch_gpu.py --only kernels --quick --out ...           a short run
  python3 bench/baselines/pytorch_gpu.py --golden results/h100/golden/pytorch_gpu.safetensors
  python3 bench/baselines/pytorch_gpu.py --dry-run --out /tmp/x.jsonl   on CPU, tiny, to check
                                                                         the script itself
--golden writes reference outputs for parity tests: GEMM and conv (forward, both gradients) on
odd shapes with deterministic inputs (values are formulas of the element index, no seed),
computed on the GPU in float64 (the reference) and in fp32 and tf32 (PyTorch's own rounding),
into a safetensors file (written here, no extra package), with the formulas in its metadata.

The machine: GPU name, driver (nvidia-smi), CUDA runtime, torch and cuDNN versions, the
imagerate version and commit (git, or IMAGERATE_COMMIT where the tree was copied without .git)
and the date go into every record.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import pytorch_cpu  # noqa: E402  (the model definitions: one copy for CPU and GPU baselines)
from gpu_problems import (SUITES, aten_name, deepbench_problems, gemm_shape, kernel_call,  # noqa: E402
                          model_problems, problem_bytes, problem_flops)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRECISIONS = ['fp32', 'tf32', 'bf16', 'fp16']
MODEL_NAMES = ['lenet5', 'cifar10-tf', 'resnet50']


# ------------------------------------------------------------------ the machine

def sh(cmd):
    try:
        return subprocess.check_output(cmd, stderr=subprocess.DEVNULL, timeout=20).decode().strip()
    except Exception:
        return None


def imagerate_info():
    version = None
    try:
        with open(os.path.join(ROOT, 'package.json')) as f:
            version = json.load(f).get('version')
    except OSError:
        pass
    commit = os.environ.get('IMAGERATE_COMMIT') or sh(['git', '-C', ROOT, 'rev-parse', '--short=12', 'HEAD'])
    return {'version': version, 'commit': commit}


def host(device):
    h = pytorch_cpu.host()
    h.update({'cpuFlags': None, 'memoryBytes': None, 'node': None, 'gpu': None, 'gpuDriver': None, 'cpuPeak': None})
    h['torch'] = torch.__version__
    if device.type == 'cuda':
        p = torch.cuda.get_device_properties(device)
        h['gpu'] = p.name
        h['gpuDriver'] = (sh(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader']) or '').split('\n')[0] or None
        h['cudaRuntime'] = torch.version.cuda
        h['cudnn'] = torch.backends.cudnn.version()
        h['gpuMemoryBytes'] = p.total_memory
        h['multiprocessors'] = p.multi_processor_count
        h['computeCapability'] = f'{p.major}.{p.minor}'
    return h


def gpu_peaks():
    """The device table of src/bench/peaks.ts (GPU_PEAKS), read from that file so that one copy
    of the datasheet figures exists. [(compiled regex, tflops dict, memGbps)]."""
    out = []
    try:
        with open(os.path.join(ROOT, 'src', 'bench', 'peaks.ts')) as f:
            text = f.read()
    except OSError:
        return out
    for m in re.finditer(r"\{ match: /(.+?)/(i?), name: '[^']*', tflops: \{ fp32: ([\d.]+|null), tf32: ([\d.]+|null), "
                         r"bf16: ([\d.]+|null), fp16: ([\d.]+|null) \}, memGbps: ([\d.]+)", text):
        num = lambda s: None if s == 'null' else float(s)
        out.append((re.compile(m.group(1), re.I if m.group(2) else 0),
                    {'fp32': num(m.group(3)), 'tf32': num(m.group(4)), 'bf16': num(m.group(5)), 'fp16': num(m.group(6))},
                    float(m.group(7))))
    return out


class Context:
    def __init__(self, device, out, warmup, target_seconds, min_iters, max_iters, flush_l2, framework_note):
        self.device = device
        self.out = out
        self.warmup = warmup
        self.target_seconds = target_seconds
        self.min_iters = min_iters
        self.max_iters = max_iters
        self.flush_l2 = flush_l2
        self.info = imagerate_info()
        self.host = host(device)
        self.framework = f'pytorch {torch.__version__}'
        self.framework_note = framework_note
        peak = next(((t, bw) for rx, t, bw in gpu_peaks() if self.host['gpu'] and rx.search(self.host['gpu'])), None)
        self.peak_tflops, self.peak_gbps = peak if peak else ({}, None)
        self.l2_scratch = None
        if flush_l2 and device.type == 'cuda':
            l2 = getattr(torch.cuda.get_device_properties(device), 'L2_cache_size', 50 << 20) or (50 << 20)
            self.l2_scratch = torch.empty(2 * l2 // 4, dtype=torch.float32, device=device)
        self.count = 0

    def emit(self, rec):
        line = json.dumps(rec)
        if self.out:
            with open(self.out, 'a') as f:
                f.write(line + '\n')
        self.count += 1
        t = rec['timing']
        what = rec.get('label') or rec['name']
        rate = f"{rec['imagesPerSec']:.0f} img/s" if rec.get('imagesPerSec') else (f"{rec['gflops']:.0f} GFLOP/s" if rec.get('gflops') else '')
        print(f"[{self.count}] {rec['kind']} {what} {rec.get('mode') or ''} b{rec.get('batch')} {rec['precision']}: "
              f"{t['medianMs']:.4f} ms {rate}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ precision and timing

def set_precision(precision):
    tf32 = precision == 'tf32'
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def autocast_dtype(precision):
    return {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(precision)


def storage_dtype(precision):
    return autocast_dtype(precision) or torch.float32


def quantile(sorted_v, q):
    pos = (len(sorted_v) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(sorted_v) - 1)
    return sorted_v[lo] + (sorted_v[hi] - sorted_v[lo]) * (pos - lo)


def timing(times_s, method):
    v = sorted(times_s)
    med = quantile(v, 0.5)
    mean = sum(v) / len(v)
    cv = (statistics.pstdev(v) / mean) if len(v) > 1 and mean > 0 else 0.0
    p10, p90 = quantile(v, 0.1), quantile(v, 0.9)
    return {'medianMs': med * 1e3, 'p10Ms': p10 * 1e3, 'p90Ms': p90 * 1e3, 'minMs': v[0] * 1e3, 'maxMs': v[-1] * 1e3,
            'cv': cv, 'noisy': (p90 - p10) / med > 0.1 if med > 0 else False, 'method': method}


def time_calls(cx, fn):
    """Seconds per call of fn(): warm-up, then as many calls as fit in ~target_seconds (within
    [min_iters, max_iters]), each between two CUDA events (host clock on the CPU dry run)."""
    cuda = cx.device.type == 'cuda'
    for _ in range(cx.warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()

    def once():
        if cx.l2_scratch is not None:
            cx.l2_scratch.zero_()  # cold L2 for the next call (outside the events)
        if cuda:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            return s.elapsed_time(e) / 1e3
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    times = [once()]
    n = min(cx.max_iters, max(cx.min_iters, int(cx.target_seconds / max(times[0], 1e-7) + 0.999)))
    while len(times) < n:
        times.append(once())
    return times, ('cuda-event' if cuda else 'wall-clock')


def base_record(cx, kind, name, precision, notes):
    return {
        'imagerate': cx.info, 'date': datetime.datetime.now(datetime.timezone.utc).isoformat(), 'host': cx.host,
        'backend': cx.device.type, 'kind': kind, 'name': name, 'mode': None, 'batch': None, 'precision': precision,
        'data': 'synthetic', 'loading': 'compute', 'threads': None, 'framework': cx.framework,
        'notes': notes + cx.framework_note,
    }


def finish(cx, rec, times, method, flops, bytes_=None):
    t = timing(times, method)
    sec = t['medianMs'] / 1e3
    peak_t = cx.peak_tflops.get(rec['precision'])
    rec.update({'warmup': cx.warmup, 'iters': len(times), 'timing': t, 'samplesMs': [round(x * 1e3, 6) for x in times]})
    if flops:
        gflops = flops / sec / 1e9
        rec.update({'flops': flops, 'gflops': gflops, 'tflops': gflops / 1e3, 'peakGflops': peak_t * 1e3 if peak_t else None,
                    'pctOfPeak': 100 * gflops / (peak_t * 1e3) if peak_t else None})
    else:
        rec.update({'peakGflops': None, 'pctOfPeak': None})
    if bytes_:
        rec.update({'bytes': bytes_, 'gbps': bytes_ / sec / 1e9, 'peakGbps': cx.peak_gbps,
                    'arithmeticIntensity': (flops / bytes_) if flops else None})
    return rec


# ------------------------------------------------------------------ kernels

def run_kernels(cx, suites, precisions, square_sizes, square_precisions, training=True):
    # Square SGEMM, as `imagerate bench gemm` names it ('sgemm', m = n = k).
    # 4096^3 also as C = A @ B^T (B stored n x k, both operands k-contiguous): the layout of
    # imagerate's TMA-fed wgmma loop (tf32), which the harness times as "4096x4096x4096 NT".
    square = [(n, prec, False) for n in square_sizes for prec in square_precisions]
    square += [(4096, prec, True) for prec in square_precisions if prec in ('fp32', 'tf32') and 4096 in square_sizes]
    for n, prec, tb in square:
        set_precision(prec)
        p = {'op': 'gemm', 'shape': gemm_shape(n, n, n, tb=tb)}
        fn = kernel_call(p, cx.device, storage_dtype(prec))
        times, method = time_calls(cx, fn)
        shape = {'m': n, 'n': n, 'k': n, 'transA': False, 'transB': tb, 'alpha': 1, 'beta': 0, 'layout': 'row-major'}
        rec = base_record(cx, 'kernel', 'sgemm', prec, f'torch.mm (cuBLAS), {precision_note(prec, kernel=True)}')
        rec.update({'shape': shape, 'label': f'sgemm {n}^3' + (' NT' if tb else '')})
        cx.emit(finish(cx, rec, times, method, 2 * n ** 3, problem_bytes(p, storage_dtype(prec).itemsize)))
        del fn
    for suite in suites:
        if suite == 'deepbench':
            problems, batch, source = deepbench_problems(training), None, 'DeepBench training-set subset (shapes.ts)'
        else:
            model, batch = SUITES[suite]
            problems = model_problems(model, batch, training)
            source = f'layer shapes of {model} at batch {batch}, found by running the model (forward hooks)'
        for p in problems:
            pool = 'pool' in p['op']
            for prec in (['fp32'] if pool else precisions):
                set_precision(prec)
                dtype = storage_dtype(prec)
                fn = kernel_call(p, cx.device, dtype)
                times, method = time_calls(cx, fn)
                layout = 'row-major' if p['op'] == 'gemm' else ('NCHW/OIHW' if p['op'].startswith('conv') else 'NCHW')
                rec = base_record(cx, 'kernel', p['op'], prec, f'{aten_name(p["op"])}, {precision_note(prec, kernel=True)}; {source}')
                rec.update({'shape': dict(p['shape'], layout=layout), 'suite': suite, 'label': p['label'],
                            'batch': batch if batch is not None else p['shape'].get('n'),
                            'flopsNote': 'pooling: one compare/add per window element' if pool else 'multiply-adds x 2 (bias not counted)'})
                cx.emit(finish(cx, rec, times, method, problem_flops(p), problem_bytes(p, dtype.itemsize)))
                del fn
    set_precision('fp32')


def precision_note(prec, kernel=False):
    if prec == 'fp32':
        return 'fp32, TF32 off (matmul and cuDNN)'
    if prec == 'tf32':
        return 'tf32: fp32 storage, TF32 tensor cores on (matmul and cuDNN)'
    name = 'bfloat16' if prec == 'bf16' else 'float16'
    if kernel:
        return f'{name} operands and output (imagerate {prec} keeps fp32 storage and rounds inside the kernel)'
    return f'torch.autocast({name}){" + GradScaler" if prec == "fp16" else ""} (mixed precision: activations in {name})'


# ------------------------------------------------------------------ models

def forward_flops_per_image(model_name):
    """Conv + fc multiply-adds x 2 of one image's forward pass (models/flops.ts's count)."""
    net = pytorch_cpu.MODELS[model_name]().eval()
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            k, c, r, s = mod.weight.shape
            total[0] += 2 * out[0].numel() * (c // mod.groups) * r * s
        elif isinstance(mod, nn.Linear):
            total[0] += 2 * mod.in_features * mod.out_features
    hooks = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(torch.zeros(1, *pytorch_cpu.INPUTS.get(model_name, (1, 28, 28))))
    for h in hooks:
        h.remove()
    return total[0]


def run_model(cx, name, batch, mode, prec, cudnn_benchmark):
    set_precision(prec)
    torch.manual_seed(0)
    dev = cx.device
    model = pytorch_cpu.MODELS[name]().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, *pytorch_cpu.INPUTS.get(name, (1, 28, 28)), device=dev)
    y = torch.randint(0, pytorch_cpu.CLASSES.get(name, 10), (batch,), device=dev)
    amp = autocast_dtype(prec)
    scaler = torch.amp.GradScaler('cuda') if (prec == 'fp16' and mode == 'training' and dev.type == 'cuda') else None
    ac = lambda: torch.autocast(dev.type, dtype=amp, enabled=amp is not None)
    if mode == 'inference':
        model.eval()

        def step():
            with torch.inference_mode(), ac():
                model(x)
    else:
        model.train()

        def step():
            opt.zero_grad(set_to_none=True)
            with ac():
                loss = F.cross_entropy(model(x), y)
            if scaler:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
    times, method = time_calls(cx, step)
    per_image = forward_flops_per_image(name) * (3 if mode == 'training' else 1)
    what = ('zero_grad + forward + cross-entropy + backward + SGD momentum step' if mode == 'training'
            else 'forward under torch.inference_mode(), eval mode')
    rec = base_record(cx, 'model', name, prec, f'PyTorch eager, NCHW, same layer sizes (its own random weights), synthetic data '
                      f'created once on the device; {what}; {precision_note(prec)}; cudnn.benchmark={cudnn_benchmark}')
    rec.update({'shape': {'input': list(pytorch_cpu.INPUTS.get(name, (1, 28, 28))), 'numClasses': pytorch_cpu.CLASSES.get(name, 10)},
                'mode': mode, 'batch': batch,
                'flopsNote': 'training = 3 x forward conv+fc FLOPs' if mode == 'training' else 'forward conv+fc FLOPs'})
    rec = finish(cx, rec, times, method, per_image * batch)
    rec['flopsPerImage'] = per_image
    rec['imagesPerSec'] = batch / (rec['timing']['medianMs'] / 1e3)
    cx.emit(rec)
    del model, opt, x, y
    if dev.type == 'cuda':
        torch.cuda.empty_cache()


# ------------------------------------------------------------------ golden outputs

def index_tensor(shape, a, b, c, device):
    """Deterministic values: ((i * a) mod b) / b - c, i the flat index (float64)."""
    n = 1
    for d in shape:
        n *= d
    i = torch.arange(n, dtype=torch.float64, device=device)
    return (torch.remainder(i * a, b) / b - c).reshape(shape)


def save_safetensors(path, tensors, metadata):
    """The safetensors format (8-byte little-endian header size, JSON header, raw data)."""
    dtypes = {torch.float32: 'F32', torch.float64: 'F64', torch.int32: 'I32'}
    header, blobs, off = {'__metadata__': {k: str(v) for k, v in metadata.items()}}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().tobytes() if hasattr(t, 'numpy') else bytes(t.untyped_storage())
        header[name] = {'dtype': dtypes[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)


def write_golden(path, device):
    tensors, cases = {}, []
    gemms = [(1, 1, 1), (3, 7, 17), (33, 17, 65), (129, 65, 257)]
    convs = [  # n, c, h, w, k, r, s, stride, pad, dilation
        (1, 1, 7, 7, 1, 3, 3, 1, 1, 1), (2, 3, 17, 13, 5, 5, 5, 1, 2, 1), (3, 7, 9, 11, 17, 3, 3, 2, 1, 1),
        (2, 16, 15, 15, 33, 1, 1, 1, 0, 1), (1, 5, 13, 13, 3, 3, 3, 1, 2, 2), (2, 3, 33, 33, 8, 7, 7, 2, 3, 1)]
    # Inputs are rounded to float32 first, so the float64 reference starts from exactly the
    # values the fp32/tf32 rows (and a test reading the stored float32 inputs) see.
    for prec in ['f64', 'fp32', 'tf32']:
        dt = torch.float64 if prec == 'f64' else torch.float32
        set_precision('tf32' if prec == 'tf32' else 'fp32')
        for (m, n, k) in gemms:
            a = index_tensor((m, k), 7, 23, 0.5, device).float().to(dt)
            b = index_tensor((k, n), 5, 19, 0.5, device).float().to(dt)
            key = f'gemm_{m}x{n}x{k}'
            if prec == 'f64':
                tensors[f'{key}.a'], tensors[f'{key}.b'] = a.float(), b.float()
                cases.append(key)
            tensors[f'{key}.c.{prec}'] = (a @ b).to(torch.float32 if prec != 'f64' else torch.float64)
        for (n, c, h, w, k, r, s, st, pd, dl) in convs:
            x = index_tensor((n, c, h, w), 7, 23, 0.5, device).float().to(dt).requires_grad_(True)
            wt = index_tensor((k, c, r, s), 5, 19, 0.5, device).float().to(dt).requires_grad_(True)
            y = F.conv2d(x, wt, None, st, pd, dl)
            dy = index_tensor(tuple(y.shape), 3, 17, 0.5, device).float().to(dt)
            dx, dw = torch.autograd.grad(y, (x, wt), dy)
            key = f'conv_{n}x{c}x{h}x{w}_k{k}_{r}x{s}_s{st}_p{pd}_d{dl}'
            if prec == 'f64':
                tensors[f'{key}.x'], tensors[f'{key}.w'], tensors[f'{key}.dy'] = x.detach().float(), wt.detach().float(), dy.float()
                cases.append(key)
            for nm, t in (('y', y), ('dx', dx), ('dw', dw)):
                tensors[f'{key}.{nm}.{prec}'] = t.detach()
    set_precision('fp32')
    meta = {
        'writer': 'bench/baselines/pytorch_gpu.py --golden', 'torch': torch.__version__, 'device': host(device).get('gpu') or 'cpu',
        'cudnn': torch.backends.cudnn.version() if device.type == 'cuda' else None, 'cases': ','.join(cases),
        'inputs': 'a, x = ((i*7) mod 23)/23 - 0.5; b, w = ((i*5) mod 19)/19 - 0.5; dy = ((i*3) mod 17)/17 - 0.5 (i = flat index); '
                  'computed in float64, rounded to float32 and stored as float32; every output row starts from those float32 values',
        'outputs': '<case>.<y|dx|dw|c>.<f64|fp32|tf32>: f64 = float64 reference on the same device from the float32-cast inputs; '
                   'fp32 = PyTorch float32 with TF32 off; tf32 = TF32 on',
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(), 'imagerate': json.dumps(imagerate_info()),
    }
    save_safetensors(path, tensors, meta)
    print(f'wrote {path}: {len(cases)} cases, {len(tensors)} tensors', file=sys.stderr)


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', help='append JSONL records here (default: stdout only)')
    ap.add_argument('--only', choices=['kernels', 'models'], help='one half only')
    ap.add_argument('--models', default=','.join(MODEL_NAMES))
    ap.add_argument('--batches', default='32,128,256')
    ap.add_argument('--modes', default='inference,training')
    ap.add_argument('--precisions', default=','.join(PRECISIONS), help='model precisions')
    ap.add_argument('--kernel-precisions', default='fp32,tf32', help='precisions of the layer-shape kernels')
    ap.add_argument('--suites', default='lenet,cifar,resnet50,deepbench')
    ap.add_argument('--gemm-sizes', default='1024,2048,4096,8192')
    ap.add_argument('--forward-only', action='store_true', help='inference kernels only')
    ap.add_argument('--warmup', type=int, default=5)
    ap.add_argument('--target-seconds', type=float, default=1.0, help='per figure, kernels and models alike')
    ap.add_argument('--min-iters', type=int, default=10)
    ap.add_argument('--max-iters', type=int, default=200)
    ap.add_argument('--flush-l2', action='store_true', help='zero 2 x L2 before each timed kernel call')
    ap.add_argument('--no-cudnn-benchmark', action='store_true', help='leave cudnn.benchmark off (PyTorch default)')
    ap.add_argument('--quick', action='store_true', help='short run: fewer shapes, batches and iterations')
    ap.add_argument('--golden', metavar='FILE.safetensors', help='write golden outputs for parity tests, then exit')
    ap.add_argument('--dry-run', action='store_true', help='on the CPU when no GPU: tiny shapes, to check the script')
    a = ap.parse_args()

    cuda = torch.cuda.is_available()
    if not cuda and not a.dry_run:
        sys.exit('pytorch_gpu.py: no CUDA device visible to PyTorch (torch.cuda.is_available() is False); '
                 'use --dry-run to check the script on the CPU')
    device = torch.device('cuda' if cuda else 'cpu')
    cudnn_benchmark = not a.no_cudnn_benchmark
    torch.backends.cudnn.benchmark = cudnn_benchmark

    if a.golden:
        write_golden(a.golden, device)
        return

    split = lambda s: [x for x in s.split(',') if x]
    models, batches, modes = split(a.models), [int(b) for b in split(a.batches)], split(a.modes)
    precisions, kprec, suites = split(a.precisions), split(a.kernel_precisions), split(a.suites)
    sizes = [int(n) for n in split(a.gemm_sizes)]
    if a.quick:
        batches = [b for b in batches if b in (32, 256)] or batches[:1]
        sizes = [n for n in sizes if n in (1024, 4096)] or sizes[:1]
        a.target_seconds, a.min_iters = min(a.target_seconds, 0.3), min(a.min_iters, 5)
    if a.dry_run:
        models, batches, modes, precisions = ['lenet5'], [4], ['inference', 'training'], ['fp32', 'bf16']
        kprec, suites, sizes = ['fp32'], ['lenet'], [64]
        a.warmup, a.target_seconds, a.min_iters, a.max_iters = 1, 0.0, 2, 2
    note = '' if cuda else ' [DRY RUN on the CPU: not a GPU figure]'
    cx = Context(device, a.out, a.warmup, a.target_seconds, a.min_iters, a.max_iters, a.flush_l2,
                 f'; torch {torch.__version__}' + (f', CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}' if cuda else '') + note)
    print(f'pytorch_gpu.py: {cx.host.get("gpu") or "CPU (dry run)"}, torch {torch.__version__}, '
          f'driver {cx.host.get("gpuDriver")}, records to {a.out or "stdout"}', file=sys.stderr)
    t0 = time.time()
    if a.only in (None, 'kernels'):
        run_kernels(cx, suites, kprec, sizes, PRECISIONS if cuda else ['fp32'], training=not a.forward_only)
    if a.only in (None, 'models'):
        for name in models:
            for batch in batches:
                for mode in modes:
                    for prec in precisions:
                        try:
                            run_model(cx, name, batch, mode, prec, cudnn_benchmark)
                        except torch.cuda.OutOfMemoryError as e:  # a point that does not fit is skipped, said
                            print(f'{name} b{batch} {mode} {prec}: out of memory ({e}); skipped', file=sys.stderr)
                            torch.cuda.empty_cache()
    print(f'pytorch_gpu.py: {cx.count} records in {time.time() - t0:.0f} s', file=sys.stderr)


if __name__ == '__main__':
    main()
