#!/bin/bash
# build.sh [OUT_DIR]: builds OUT_DIR/imagerate_cuda_emu, the CUDA harness's checks (GEMM, conv and
# the other ops) running the CUDA kernels' own source on the CPU emulator (emu.h), with cmake and
# g++ only (no Node.js, nvcc or GPU). A thin wrapper: the build is described once, in
# cmake/cuda_emu.cmake (target imagerate_cuda_emu_harness, beside the emulated CUDA addon), and
# configured here through the standalone project native/harness/emu/CMakeLists.txt.
#   bash native/harness/emu/build.sh && build-emu/imagerate_cuda_emu --quick
# OUT_DIR (the CMake build directory) defaults to build-emu/ at the repository root.
# SANITIZE=address,undefined builds it with ASan and UBSan (IMAGERATE_SANITIZE; unset: none).
# Under a minute on 2 cores from scratch (about 2 with SANITIZE); a rebuild compiles only what
# changed (under a second when nothing did).
# Runs (2-core machine): --quick about 30 s (1,195 checks), --quick --wgmma about 15 (11.5
# before the TMA model and loop; emu_proxy.cc's store tracking is most of the difference;
# EMU_PROXY=all, which tracks every block, about 20); --selftest-wgmma (the wgmma model's 39 checks) and --selftest-tma
# (the TMA, mbarrier and dynamic shared memory model's 71) about a second each, 1 to 3 under
# SANITIZE; --suite gemm --skip tall about 3 minutes, --suite conv about 11 (measured before the
# _setjmp fibers, which halved the time); the two 8.4M-row "gemm tall" checks take about 1 minute
# (fp32) and much longer (tf32: every mma is a warp rendezvous), so --skip tall for routine use.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$(cd "$HERE/../../.." && pwd)/build-emu}
if [ -f "$OUT/CMakeCache.txt" ] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$HERE" "$OUT/CMakeCache.txt"; then
  echo "build.sh: $OUT holds the build of another CMake project (e.g. a cmake-js one); remove it or name another OUT_DIR" >&2
  exit 1
fi
cmake -S "$HERE" -B "$OUT" -DIMAGERATE_SANITIZE="${SANITIZE:-}" >/dev/null
cmake --build "$OUT" --target imagerate_cuda_emu_harness --parallel 2
echo "built $OUT/imagerate_cuda_emu"
