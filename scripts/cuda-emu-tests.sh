#!/usr/bin/env bash
# cuda-emu-tests.sh [vitest args...]: the cuda test suites on a machine without a GPU. Builds
# imagerate_cuda_emu.node (the CUDA addon with its kernels on the CPU emulator,
# cmake/cuda_emu.cmake) into build-cuda-emu/, then runs with --backend cuda, against it, the
# suites that scripts/gpu/run-gpu.sh's tests stage runs on the H100 (ops, GEMM/conv, gradients,
# norms, models, autograd, device failure, `train --cuda-graph` against eager training on a few
# batches), but not the training tests (the three fp32 ones
# take about 25 minutes on the emulator, the tf32/bf16/fp16 ones hours: name them, e.g.
# test/train/train.test.ts -t "training on cuda (lenet5 beats|stops|is reproducible)").
# Warps and lanes run in shuffled order (EMU_ORDER, default shuffle here).
#   bash scripts/cuda-emu-tests.sh --reporter=verbose
# About 2 minutes on 2 cores after a 2-minute build. Correctness only: the emulator times nothing.
# SANITIZE=address,undefined builds it with ASan and UBSan instead (build-cuda-emu-asan/) and
# runs node as CI's sanitizer pass of the CPU addon does (UBSan halts on the first finding).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-cuda-emu san=()
if [ -n "${SANITIZE:-}" ]; then out=build-cuda-emu-asan san=(--CDIMAGERATE_SANITIZE="$SANITIZE"); fi
log=/tmp/imagerate-$out-build.log
if ! npx cmake-js compile --out "$out" --CDIMAGERATE_CUDA=OFF --CDIMAGERATE_CUDA_EMU=ON "${san[@]}" \
     --target imagerate_cuda_emu --parallel 2 >"$log" 2>&1; then
  echo "building imagerate_cuda_emu.node failed:"; tail -30 "$log"; exit 3
fi
export IMAGERATE_CUDA_ADDON="$PWD/$out/Release/imagerate_cuda_emu.node" IMAGERATE_TEST_BACKENDS=cuda
export EMU_ORDER="${EMU_ORDER:-shuffle}"
if [ -n "${SANITIZE:-}" ]; then
  export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
    ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fi
files=(test/native/cuda-addon.test.ts test/kernels/backend-ops.test.ts test/kernels/backend-gemm-conv.test.ts
       test/backend/registry.test.ts test/reliability/device.test.ts test/ops/gradcheck.test.ts
       test/ops/gradcheck-norm.test.ts test/kernels/norm.test.ts test/models/models.test.ts
       test/autograd/autograd.test.ts test/train/cuda-graph.test.ts)
[ "$#" -gt 0 ] && [[ "$1" == test/* ]] && files=()
exec node node_modules/vitest/vitest.mjs run "${files[@]}" "$@"
