#!/bin/bash
# build.sh [OUT_DIR]: builds imagerate_cuda_emu, the CUDA harness's checks (GEMM, conv and the
# other ops) running the CUDA kernels' own source on the CPU emulator (emu.h), with g++ only
# (no nvcc, no GPU). The CUDA addon on the same emulator is built by CMake (cmake/cuda_emu.cmake).
#   bash native/harness/emu/build.sh && build-emu/imagerate_cuda_emu --quick
# OUT_DIR defaults to build-emu/ at the repository root; ROOT=... points at another checkout
# (the kernels, CPU kernels and harness are taken from there). About 1 minute on 2 cores.
# Runs (2-core machine): --quick about 30 s (878 checks); --suite gemm --skip tall about
# 3 minutes, --suite conv about 11 (measured before the _setjmp fibers, which halved the time); the two 8.4M-row "gemm tall" checks take about 1 minute
# (fp32) and much longer (tf32: every mma is a warp rendezvous), so --skip tall for routine use.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${ROOT:-$(cd "$HERE/../../.." && pwd)}
OUT=${1:-$ROOT/build-emu}
mkdir -p "$OUT/obj" "$OUT/gen"
python3 "$HERE/transform.py" "$ROOT/kernels/cuda" "$OUT/gen"
CXX="g++ -std=c++17 -O2 -g -Wall -Wno-unused-parameter -Wno-unused-function -Wno-unknown-pragmas -Wno-maybe-uninitialized"
INC="-I$HERE/include -I$HERE -I$OUT/gen -I$ROOT/kernels/cpu -I$ROOT/native/harness -I$ROOT/kernels/cuda"
pids=()
build() { "$@" & pids+=($!); if (( ${#pids[@]} >= 2 )); then wait ${pids[0]}; pids=(${pids[@]:1}); fi; }
for f in "$ROOT"/kernels/cpu/*.cc; do
  b=$(basename "$f" .cc); extra=""; [[ $b == *_avx2 ]] && extra="-mavx2 -mfma"
  [[ -f "$OUT/obj/cpu_$b.o" && "$OUT/obj/cpu_$b.o" -nt "$f" ]] || build $CXX $extra -O3 -I$ROOT/kernels/cpu -c "$f" -o "$OUT/obj/cpu_$b.o"
done
rm -f "$OUT/obj/"*.cu.o
for f in "$OUT"/gen/*.cu; do build $CXX -D__CUDA_ARCH__=900 $INC -x c++ -c "$f" -o "$OUT/obj/$(basename "$f").o"; done
for f in emu_runtime emu_memory emu_api; do build $CXX $INC -c "$HERE/$f.cc" -o "$OUT/obj/$f.o"; done
build $CXX $INC -c "$HERE/emu_main.cc" -o "$OUT/obj/emu_main.o"
rm -f "$OUT/obj/validate_gemm_conv.o" "$OUT/obj/gemm.o" "$OUT/obj/conv2d.o"
for f in validate_gemm validate_conv validate_ops; do build $CXX $INC -c "$ROOT/native/harness/$f.cc" -o "$OUT/obj/$f.o"; done
build $CXX $INC -Dmain=harness_main_not_used -c "$ROOT/native/harness/cuda_harness.cc" -o "$OUT/obj/cuda_harness.o"
for p in "${pids[@]}"; do wait $p; done
$CXX -o "$OUT/imagerate_cuda_emu" "$OUT"/obj/*.o -lpthread
echo "built $OUT/imagerate_cuda_emu"
