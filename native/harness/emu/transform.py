#!/usr/bin/env python3
"""transform.py SRC_DIR OUT_DIR: copies the CUDA kernel sources that the emulator runs
(kernels/cuda: kernels.cuh, common.cuh, gemm_tile.cuh, gemm_operands.cuh, conv_operands.cuh,
gemm.cu, conv2d.cu) with the few mechanical edits g++ needs (emu.h says what they model):
  kernel<<<grid, block, smem, stream>>>(args);  ->  emu::launch("kernel", grid, block, [&] { kernel(args); });
  the bodies of to_tf32, pack2 and the three mma.sync asm statements -> emu:: calls.
Each edit must match exactly as often as expected, so a change in the sources fails loudly."""
import os, re, sys

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)

def split_top(s):
    parts, depth, cur = [], 0, ''
    for ch in s:
        if ch in '(<[': depth += 1
        if ch in ')>]': depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur.strip()); cur = ''
        else:
            cur += ch
    parts.append(cur.strip())
    return parts

def launches(text, expect):
    n = 0
    def rep(m):
        nonlocal n
        n += 1
        name, cfg, args = m.group(1), m.group(2), m.group(3)
        c = split_top(cfg)
        return ('emu::launch("%s", emu::as_dim3(%s), emu::as_dim3(%s), [&] { %s(%s); });'
                % (name.split('<')[0], c[0], c[1], name, args))
    text = re.sub(r'([\w:]+(?:<[^;<>]*>)?)<<<(.*?)>>>\((.*?)\);', rep, text)
    assert n == expect, (n, expect)
    return text

def sub(text, pat, repl, expect, flags=0):
    new, n = re.subn(pat, repl, text, flags=flags)
    assert n == expect, (pat, n, expect)
    return new

files = {
    'kernels.cuh': lambda t: t,
    'common.cuh': lambda t: t,
    'gemm_operands.cuh': lambda t: t,
    'conv_operands.cuh': lambda t: t,
    'gemm.cu': lambda t: launches(t, 1),
    'conv2d.cu': lambda t: launches(t, 1),
}
def gemm_tile(t):
    t = launches(t, 2)
    t = sub(t, r'asm\("cvt\.rna\.tf32\.f32 %0, %1;" : "=r"\(r\) : "f"\(x\)\);', 'r = emu::cvt_tf32_rna(x);', 1)
    t = sub(t, r'asm\("cvt\.rn\.bf16x2\.f32 %0, %1, %2;" : "=r"\(r\) : "f"\(hi\), "f"\(lo\)\);',
            'r = emu::pack_bf16x2(lo, hi);', 1)
    t = sub(t, r'asm\("cvt\.rn\.f16x2\.f32 %0, %1, %2;" : "=r"\(r\) : "f"\(hi\), "f"\(lo\)\);',
            'r = emu::pack_f16x2(lo, hi);', 1)
    t = sub(t, r'asm volatile\(\s*"mma\.sync\.aligned\.m16n8k8\.row\.col\.f32\.tf32\.tf32\.f32.*?\);',
            'emu::mma_sync(1, d, a, b);', 1, re.S)
    t = sub(t, r'asm volatile\(\s*"mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.bf16\.bf16\.f32.*?\);',
            'emu::mma_sync(2, d, a, b);', 1, re.S)
    t = sub(t, r'asm volatile\(\s*"mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.f16\.f16\.f32.*?\);',
            'emu::mma_sync(3, d, a, b);', 1, re.S)
    assert 'asm' not in re.sub(r'//.*', '', t)
    return t
files['gemm_tile.cuh'] = gemm_tile

for name, fn in files.items():
    with open(os.path.join(src, name)) as f:
        t = f.read()
    t = fn(t)
    with open(os.path.join(out, name), 'w') as f:
        f.write(t)
