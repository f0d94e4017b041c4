#!/usr/bin/env python3
"""transform.py SRC_DIR OUT_DIR: copies every CUDA source of kernels/cuda (the kernels and the
host code around them) with the few mechanical edits g++ needs to run them on the emulator
(emu.h says what they model):
  kernel<<<grid, block, smem, stream>>>(args);
      ->  emu::launch("kernel", emu::as_dim3(grid), emu::as_dim3(block), smem, stream, &kernel, args);
  the bodies of to_tf32, pack2 and the three mma.sync asm statements -> emu:: calls;
  wgmma.cuh's asm statements (wgmma fence/mma_async/commit/wait, fence.proxy.async) -> emu::
  calls, the operand fence -> nothing; tma.cuh's (mbarrier init/arrive.expect_tx/try_wait,
  fence.mbarrier_init, cp.async.bulk.tensor) -> emu:: calls; each must read exactly as below up
  to whitespace;
  common.cuh's `#ifdef __CUDACC__` (device helpers) -> always on;
  each __shared__ array declaration gets emu::shared_fresh (filled with NaN bytes when a
  block's first thread reaches it; given its shared-window address); an extern __shared__
  declaration becomes a pointer to the launch's dynamic shared memory (emu::shared_dynamic).
Every file of SRC_DIR must be listed below with its number of launches, and each edit must
match exactly as often as expected, so a new file or a changed source fails loudly."""
import os, re, sys

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)

def check(cond, *what):
    """A failed expectation stops the build (not `assert`: python -O would drop those)."""
    if not cond:
        sys.exit('transform.py: %s' % ' '.join(str(w) for w in what))

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
        check(2 <= len(c) <= 4, c)
        smem = c[2] if len(c) > 2 else '0'
        stream = c[3] if len(c) > 3 else '0'
        return ('emu::launch("%s", emu::as_dim3(%s), emu::as_dim3(%s), %s, %s, &%s, %s);'
                % (name.split('<')[0], c[0], c[1], smem, stream, name, args))
    text = re.sub(r'([\w:]+(?:<[^;<>]*>)?)<<<(.*?)>>>\((.*?)\);', rep, text, flags=re.S)
    check(n == expect, (n, expect))
    return text

def sub(text, pat, repl, expect, flags=0):
    new, n = re.subn(pat, repl, text, flags=flags)
    check(n == expect, (pat, n, expect))
    return new

# file -> launches in it (0: copied unchanged apart from the checks)
LAUNCHES = {
    'kernels.cuh': 0, 'common.cuh': 0, 'gemm_operands.cuh': 0, 'conv_operands.cuh': 0,
    'channel_reduce.cuh': 3, 'device_probe.h': 0, 'device_probe.cu': 0,
    'gemm.cu': 1, 'conv2d.cu': 1, 'batchnorm.cu': 4, 'elementwise.cu': 12, 'lrn.cu': 2,
    'pool2d.cu': 4, 'sgd.cu': 1, 'softmax_xent.cu': 2, 'gemm_tile.cuh': 4, 'wgmma.cuh': 0,
    'tma.cuh': 0, 'tma.cu': 0,
}
def common(t):
    return sub(t, r'^#ifdef __CUDACC__$', '#if 1  // __CUDACC__: the device helpers, emulated', 1, re.M)

def gemm_tile(t):
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
    return t

def exact(t, stmt, repl, expect):
    """Replaces statement `stmt` (C source text), matched token for token: only the amount of
    whitespace where it has some may differ."""
    pat = r'\s+'.join(re.escape(tok) for tok in stmt.split())
    new, n = re.subn(pat, lambda m: repl, t)
    check(n == expect, 'found %d of %d statements reading (up to whitespace): %s' % (n, expect, ' '.join(stmt.split())))
    return new

def macro_body(t, name):
    m = re.search(r'^#define %s((?:.*\\\n)*.*)$' % name, t, re.M)
    check(m, 'wgmma.cuh: no macro', name)
    return m.group(1).replace('\\\n', ' ')

# wgmma.cuh: the statements of its functions. The 64 accumulators are operands %0..%63 in
# order (IMAGERATE_WG_D64 and IMAGERATE_WG_OUT64, checked here), then %64 da, %65 db, %66 scale_d.
WG_MMA = r'''asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %%66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128%s.f32.%s.%s " IMAGERATE_WG_D64 ", %%64, %%65, p, 1, 1%s;\n}\n"
        : IMAGERATE_WG_OUT64(d)
        : "l"(da), "l"(db), "r"(scale_d));'''
def wgmma(t):
    d64 = ''.join(re.findall(r'"([^"]*)"', macro_body(t, r'IMAGERATE_WG_D64\b')))
    check(d64 == '{%s}' % ', '.join('%%%d' % i for i in range(64)), 'wgmma.cuh: IMAGERATE_WG_D64 reads', d64)
    out64 = re.sub(r'\s+', '', macro_body(t, r'IMAGERATE_WG_OUT64\(d\)'))
    check(out64 == ','.join('"+f"(d[%d])' % i for i in range(64)), 'wgmma.cuh: IMAGERATE_WG_OUT64 reads', out64)
    t = exact(t, r'asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");', 'emu::wgmma_fence();', 1)
    t = exact(t, r'asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");', 'emu::wgmma_commit_group();', 1)
    t = exact(t, r'asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");', 'emu::wgmma_wait_group(0);', 1)
    t = exact(t, r'asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");', 'emu::wgmma_wait_group(1);', 1)
    t = exact(t, r'asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");', 'emu::fence_proxy_async();', 1)
    t = exact(t, r'asm volatile("" : "+f"(d[i])::"memory");', '(void)d[i];', 1)
    for kind, shape, ab, trans in ((1, 'k8', 'tf32', ''), (2, 'k16', 'bf16', ', 0, 0'), (3, 'k16', 'f16', ', 0, 0')):
        t = exact(t, WG_MMA % (shape, ab, ab, trans), 'emu::wgmma_mma_async(%d, d, da, db, scale_d);' % kind, 1)
    return t

# tma.cuh: one statement per function, operands %0.. in the order written.
TMA_TRY_WAIT = r'''asm volatile(
      "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.b32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");'''
TMA_LOAD_2D = r'''asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
      ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");'''
def tma(t):
    t = exact(t, r'asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");',
              'emu::mbarrier_init(bar, count);', 1)
    t = exact(t, r'asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");', 'emu::fence_mbarrier_init();', 1)
    t = exact(t, r'asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");',
              'emu::mbarrier_arrive_expect_tx(bar, bytes);', 1)
    t = exact(t, TMA_TRY_WAIT, 'done = emu::mbarrier_try_wait_parity(bar, parity);', 1)
    t = exact(t, TMA_LOAD_2D, 'emu::tma_load_2d(dst, reinterpret_cast<uint64_t>(map), c0, c1, bar);', 1)
    return t

# file -> its own edits, after the launches (every file of LAUNCHES gets those)
EDITS = {'common.cuh': common, 'gemm_tile.cuh': gemm_tile, 'wgmma.cuh': wgmma, 'tma.cuh': tma}

unknown = sorted(set(f for f in os.listdir(src) if f.endswith(('.cu', '.cuh', '.h'))) - set(LAUNCHES))
check(not unknown, 'kernels/cuda files the emulator does not know (add them to LAUNCHES): %s' % unknown)

# Every __shared__ array is poisoned (0xFF bytes: NaN) when the first thread of a block reaches
# its declaration (emu::shared_fresh), so a read of shared memory the block never wrote shows,
# as on a GPU, where its contents are undefined; it also gets its shared-window address there,
# at its declared alignment (__alignof__). Each declaration must read as expected.
SHARED = re.compile(r'^(\s*__shared__ (?:__align__\(\d+\) )?[\w:]+ (\w+)(?:\[[^\]\n]*\])+;)', re.M)
# extern __shared__ [__align__(N)] T name[];  -> a T* to the launch's dynamic shared memory, at
# the declared alignment (the type's own without __align__), poisoned like an array.
EXTERN_SHARED = re.compile(r'^(\s*)extern __shared__ (?:__align__\((\d+)\) )?([\w:]+(?: [\w:]+)*) (\w+)\[\];', re.M)
def poison_shared(t, name):
    want = len(re.findall(r'\b__shared__\b', re.sub(r'//.*', '', t)))
    fresh = lambda m: m.group(1) + ' emu::shared_fresh(%s, sizeof %s, __alignof__(%s));' % ((m.group(2),) * 3)
    t, n = SHARED.subn(fresh, t)
    def dynamic(m):
        align = m.group(2) or '__alignof__(%s)' % m.group(3)
        return ('%s%s* const %s = static_cast<%s*>(emu::shared_dynamic(%s));'
                % (m.group(1), m.group(3), m.group(4), m.group(3), align))
    t, n_ext = EXTERN_SHARED.subn(dynamic, t)
    check(n + n_ext == want, ('__shared__ declarations the emulator cannot poison in', name, n + n_ext, want))
    return t

for name, n in LAUNCHES.items():
    with open(os.path.join(src, name)) as f:
        t = f.read()
    t = poison_shared(EDITS.get(name, lambda t: t)(launches(t, n)), name)
    check(not re.search(r'\basm\b', re.sub(r'//.*', '', t)), 'inline PTX the emulator does not model in ' + name)
    with open(os.path.join(out, name), 'w') as f:
        f.write(t)
