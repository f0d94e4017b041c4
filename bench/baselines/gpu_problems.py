"""The kernel problems of the PyTorch GPU baseline (pytorch_gpu.py): imagerate's kernel-suite
shapes (src/bench/shapes.ts) found by running the models with forward hooks, the DeepBench
subset, their FLOP and byte counts, and a closure running one call of a problem in PyTorch
(cuBLAS/cuDNN on a GPU)."""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

import pytorch_cpu  # the model definitions: one copy for the CPU and GPU baselines

# src/bench/shapes.ts MODEL_SUITES
SUITES = {'lenet': ('lenet5', 64), 'cifar': ('cifar10-tf', 64), 'resnet50': ('resnet50', 8)}
# src/bench/shapes.ts DEEPBENCH_GEMM (m, n, k, transA, transB) and DEEPBENCH_CONV
# (w, h, c, n, k, s, r, pad_w, pad_h, stride_w, stride_h)
DEEPBENCH_GEMM = [(1760, 16, 1760, False, False), (1760, 128, 1760, False, False), (2560, 64, 2560, False, False),
                  (2560, 64, 2560, True, False), (35, 8457, 2048, False, False), (3072, 128, 1024, False, False)]
DEEPBENCH_CONV = [(700, 161, 1, 4, 32, 20, 5, 0, 0, 2, 2), (54, 54, 64, 8, 64, 3, 3, 1, 1, 1, 1),
                  (224, 224, 3, 16, 64, 7, 7, 3, 3, 2, 2), (28, 28, 192, 16, 32, 5, 5, 2, 2, 1, 1),
                  (14, 14, 256, 8, 256, 3, 3, 1, 1, 1, 1), (7, 7, 832, 16, 256, 1, 1, 0, 0, 1, 1)]


def conv_shape(n, c, h, w, k, r, s, stride, pad, dil=(1, 1)):
    p = (h + 2 * pad[0] - dil[0] * (r - 1) - 1) // stride[0] + 1
    q = (w + 2 * pad[1] - dil[1] * (s - 1) - 1) // stride[1] + 1
    return {'n': n, 'c': c, 'h': h, 'w': w, 'k': k, 'r': r, 's': s, 'strideH': stride[0], 'strideW': stride[1],
            'padH': pad[0], 'padW': pad[1], 'dilH': dil[0], 'dilW': dil[1], 'p': p, 'q': q}


def gemm_shape(m, n, k, ta=False, tb=False):
    return {'transA': ta, 'transB': tb, 'm': m, 'n': n, 'k': k, 'alpha': 1, 'beta': 0,
            'lda': m if ta else k, 'ldb': k if tb else n, 'ldc': n}


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def model_problems(model_name, batch, training=True):
    """Every kernel problem of a model at `batch`, deduplicated by shape (shapes.ts)."""
    net = pytorch_cpu.MODELS[model_name]().eval()
    found, seen = [], {}

    def add(op, label, shape):
        key = json.dumps([op, shape], sort_keys=True)
        if key in seen:
            seen[key]['count'] += 1
            return
        seen[key] = {'op': op, 'label': label, 'count': 1, 'shape': shape}
        found.append(seen[key])

    hooks = []
    for name, m in net.named_modules():
        def hook(mod, inp, out, name=name):
            xs = [batch] + list(inp[0].shape[1:])
            label = f'{model_name} {name}'
            if isinstance(mod, nn.Conv2d):
                k, c, r, s = mod.weight.shape
                shape = conv_shape(xs[0], xs[1], xs[2], xs[3], k, r, s, pair(mod.stride), pair(mod.padding), pair(mod.dilation))
                for op in (['conv2dFwd', 'conv2dBwdData', 'conv2dBwdFilter'] if training else ['conv2dFwd']):
                    add(op, label, shape)
            elif isinstance(mod, nn.Linear):
                out_f, in_f = mod.weight.shape
                add('gemm', f'{label} (fwd)', gemm_shape(batch, out_f, in_f, False, True))
                if training:
                    add('gemm', f'{label} (bwd data)', gemm_shape(batch, in_f, out_f, False, False))
                    add('gemm', f'{label} (bwd filter)', gemm_shape(out_f, in_f, batch, True, False))
            elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                is_max = isinstance(mod, nn.MaxPool2d)
                if isinstance(mod, nn.AdaptiveAvgPool2d):  # global average pool: the whole map is the window
                    kh, kw, sh_, sw, ph, pw = xs[2], xs[3], xs[2], xs[3], 0, 0
                else:
                    (kh, kw), (sh_, sw), (ph, pw) = pair(mod.kernel_size), pair(mod.stride or mod.kernel_size), pair(mod.padding)
                shape = {'n': xs[0], 'c': xs[1], 'h': xs[2], 'w': xs[3], 'kh': kh, 'kw': kw, 'strideH': sh_, 'strideW': sw,
                         'padH': ph, 'padW': pw, 'p': (xs[2] + 2 * ph - kh) // sh_ + 1, 'q': (xs[3] + 2 * pw - kw) // sw + 1,
                         'countIncludePad': bool(getattr(mod, 'count_include_pad', True))}
                ops = ['maxpool2dFwd', 'maxpool2dBwd'] if is_max else ['avgpool2dFwd', 'avgpool2dBwd']
                for op in ops if training else ops[:1]:
                    add(op, label, shape)
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        net(torch.zeros(1, *pytorch_cpu.INPUTS.get(model_name, (1, 28, 28))))
    for h in hooks:
        h.remove()
    for p in found:
        if p['count'] > 1:
            p['label'] += f" (x{p['count']} layers)"
    return found


def deepbench_problems(training=True):
    out = []
    for m, n, k, ta, tb in DEEPBENCH_GEMM:
        out.append({'op': 'gemm', 'label': f"deepbench gemm {m}x{n}x{k}{' A^T' if ta else ''}{' B^T' if tb else ''}",
                    'count': 1, 'shape': gemm_shape(m, n, k, ta, tb)})
    for w, h, c, n, k, s, r, pw, ph, sw, sh_ in DEEPBENCH_CONV:
        shape = conv_shape(n, c, h, w, k, r, s, (sh_, sw), (ph, pw))
        label = f'deepbench conv {w}x{h}x{c} n{n} k{k} {r}x{s}/{sh_}'
        for op in (['conv2dFwd', 'conv2dBwdData', 'conv2dBwdFilter'] if training else ['conv2dFwd']):
            out.append({'op': op, 'label': label, 'count': 1, 'shape': shape})
    return out


def problem_flops(p):
    s = p['shape']
    if p['op'] == 'gemm':
        return 2 * s['m'] * s['n'] * s['k']
    if p['op'].startswith('conv'):
        return 2 * s['n'] * s['k'] * s['p'] * s['q'] * s['c'] * s['r'] * s['s']
    return s['n'] * s['c'] * s['p'] * s['q'] * s['kh'] * s['kw']


def problem_bytes(p, elem=4):
    s = p['shape']
    if p['op'] == 'gemm':
        return elem * (s['m'] * s['k'] + s['k'] * s['n'] + s['m'] * s['n'])
    if p['op'].startswith('conv'):
        return elem * (s['n'] * s['c'] * s['h'] * s['w'] + s['k'] * s['c'] * s['r'] * s['s'] + s['n'] * s['k'] * s['p'] * s['q'])
    x, y = s['n'] * s['c'] * s['h'] * s['w'], s['n'] * s['c'] * s['p'] * s['q']
    return elem * ((x + 2 * y) if p['op'].startswith('maxpool') else (x + y))


def kernel_call(p, device, dtype):
    """A closure running one call of problem p (buffers made once)."""
    s, g = p['shape'], torch.Generator(device='cpu').manual_seed(7)
    rnd = lambda *shape: torch.randn(*shape, generator=g).to(device=device, dtype=dtype)
    op = p['op']
    if op == 'gemm':
        a = rnd(s['k'], s['m']).t() if s['transA'] else rnd(s['m'], s['k'])
        b = rnd(s['n'], s['k']).t() if s['transB'] else rnd(s['k'], s['n'])
        c = torch.empty(s['m'], s['n'], device=device, dtype=dtype)
        return lambda: torch.mm(a, b, out=c)
    if op.startswith('conv'):
        x, w = rnd(s['n'], s['c'], s['h'], s['w']), rnd(s['k'], s['c'], s['r'], s['s'])
        dy = rnd(s['n'], s['k'], s['p'], s['q'])
        st, pd, dl = [s['strideH'], s['strideW']], [s['padH'], s['padW']], [s['dilH'], s['dilW']]
        if op == 'conv2dFwd':
            return lambda: F.conv2d(x, w, None, st, pd, dl)
        mask = [True, False, False] if op == 'conv2dBwdData' else [False, True, False]
        return lambda: torch.ops.aten.convolution_backward(dy, x, w, None, st, pd, dl, False, [0, 0], 1, mask)
    x = rnd(s['n'], s['c'], s['h'], s['w'])
    k, st, pd = [s['kh'], s['kw']], [s['strideH'], s['strideW']], [s['padH'], s['padW']]
    dy = rnd(s['n'], s['c'], s['p'], s['q'])
    if op == 'maxpool2dFwd':
        return lambda: F.max_pool2d_with_indices(x, k, st, pd)
    if op == 'maxpool2dBwd':
        _, idx = F.max_pool2d_with_indices(x, k, st, pd)
        return lambda: torch.ops.aten.max_pool2d_with_indices_backward(dy, x, k, st, pd, [1, 1], False, idx)
    if op == 'avgpool2dFwd':
        return lambda: F.avg_pool2d(x, k, st, pd, False, s['countIncludePad'])
    return lambda: torch.ops.aten.avg_pool2d_backward(dy, x, k, st, pd, False, s['countIncludePad'], None)


def aten_name(op):
    return {'gemm': 'torch.mm (cuBLAS)', 'conv2dFwd': 'F.conv2d (cuDNN)',
            'conv2dBwdData': 'aten.convolution_backward, input gradient only (cuDNN)',
            'conv2dBwdFilter': 'aten.convolution_backward, weight gradient only (cuDNN)'}.get(op, f'aten {op}')
