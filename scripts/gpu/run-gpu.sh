#!/usr/bin/env bash
# run-gpu.sh: run THERE, on the GPU machine (CUDA, cmake, PyTorch, NVIDIA driver; no Node.js,
# no network), from the repository root of a working tree carried with ["gpu-carry", "dist"]
# (see scripts/gpu/prepare-carry.sh and docs/gpu.md). Everything it measures goes under
# $OUT/results/h100/ so that it comes back; every step has a time limit, so a hang costs one
# step, not the session.
#
#   bash scripts/gpu/run-gpu.sh STAGE...     stages run in the order given:
#     setup    node (from gpu-carry/node.xz), node_modules, Vulkan libraries (dpkg -x into a
#              local prefix), the native addons (carried prebuilt ones if they load, else a
#              cmake build with IMAGERATE_CUDA=ON for sm_90a), and env.txt (GPU, driver, versions).
#              Idempotent and quick once done; every other stage runs it first.
#     harness  the CUDA kernel harness: --validate, compute-sanitizer memcheck of --validate
#              --quick, then --bench (records to harness-bench.jsonl)
#     sanitize compute-sanitizer racecheck (shared-memory hazards) and synccheck (barrier misuse)
#              of the harness's --validate --quick: what the CPU emulator's warp orders cannot
#              prove absent (logs/harness-racecheck.log, logs/harness-synccheck.log)
#     wgmma    the harness's --validate, memcheck (--quick) and --bench with --wgmma (GEMM and conv
#              on the sm_90a wgmma loop; harness-bench-wgmma.jsonl), then bench models cifar10-tf
#              and resnet50 at 128/256, tf32 and bf16, with IMAGERATE_CUDA_WGMMA=1
#              (models-cuda-wgmma.jsonl)
#     pytorch  bench/baselines/pytorch_gpu.py (records to pytorch_gpu.jsonl) and its --golden file
#     tests    vitest: the CUDA addon test and the shared backend op tests (cpu, cuda, webgpu),
#              then the gradient, norm, model, autograd and training suites on cuda only
#     bench    node dist/cli.js bench all --backend cuda (records + report.html in bench-all/)
#     models   node dist/cli.js bench models for lenet5/cifar10-tf/resnet50 at 32/128/256,
#              fp32 and tf32 (records to models-cuda.jsonl)
#     train    LeNet-5 trained on cuda to 97.5 % test top-1 on the embedded MNIST split, eager and
#              with --cuda-graph (train-lenet5-cuda*.json: the summaries with the time to target),
#              then the two runs' epochs compared (the same seed: they must be identical)
#     webgpu   cuBLAS square SGEMM at 2048/4096 (pytorch_sgemm.jsonl), the gemm.wgsl variant sweep
#              at 4096/2048 (gemm-webgpu-variants.jsonl; again at 4096 with robustness off,
#              ...-norobust.jsonl), bench gemm --backend webgpu at 1024/2048/4096 and with the
#              sweep's winner (gemm-webgpu.jsonl), the summary against cuBLAS
#              (gemm-webgpu-summary.txt), bench kernels --backend webgpu on the lenet suite
#              (kernels-webgpu.jsonl); Dawn on the NVIDIA Vulkan driver
#
# Environment: OUT (default ./gpu-out), IMAGERATE_GPU_WORK (default /tmp/imagerate-gpu: node
# and the Vulkan prefix), IMAGERATE_GPU_REBUILD=1 (build the addons even if the prebuilt load),
# IMAGERATE_GPU_QUICK=1 (shorter pytorch/bench runs), IMAGERATE_GPU_DRY_RUN=1 (rehearsal on a
# machine without a GPU: accept the prebuilt addons although no device answers).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/gpu-out}"
RES="$OUT/results/h100"
LOGS="$RES/logs"
WORK="${IMAGERATE_GPU_WORK:-/tmp/imagerate-gpu}"
CARRY="$ROOT/gpu-carry"
QUICK="${IMAGERATE_GPU_QUICK:-0}"
mkdir -p "$RES" "$LOGS" "$WORK/bin"
export IMAGERATE_COMMIT="$(cat "$CARRY/COMMIT" 2>/dev/null || echo unknown)"
for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do [ -d "$d" ] && PATH="$PATH:$d"; done
export PATH="$WORK/bin:$PATH"
NPROC="$(nproc 2>/dev/null || echo 8)"

log() { printf '[run-gpu %s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$LOGS/run-gpu.log" >&2; }
# step NAME LIMIT_S CMD...: runs CMD with a time limit, output to logs/NAME.log (tail shown),
# records "NAME rc seconds" in status.txt; never stops the script.
step() {
  local name="$1" limit="$2"
  shift 2
  local t0=$SECONDS rc
  log "$name: $* (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
  rc=$?
  printf '%-28s rc=%-4s %5ss\n' "$name" "$rc" "$((SECONDS - t0))" | tee -a "$RES/status.txt" >&2
  tail -n 15 "$LOGS/$name.log" >&2
  return $rc
}

# ---------------------------------------------------------------- setup
# Loads an addon; for the CUDA one also requires a usable device (IMAGERATE_GPU_DRY_RUN=1: any
# probe answer will do, to rehearse this script on a machine without a GPU).
addon_loads() {
  node -e "const a=require(process.argv[1]);if(a.probe){const p=a.probe();console.log(JSON.stringify(p));if(!p.available&&process.env.IMAGERATE_GPU_DRY_RUN!=='1')process.exit(3)}" "$(readlink -f "$1")"
}

build_native() {
  log "building the native addons with cmake (IMAGERATE_CUDA=ON, sm_90a, -j$NPROC)"
  step build-native-configure 120 cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_JS_INC=$ROOT/node_modules/node-api-headers/include;$ROOT/node_modules/node-addon-api" \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$ROOT/build/Release" -DIMAGERATE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a &&
    step build-native 420 cmake --build build -j "$NPROC"
}

setup() {
  if [ -f "$WORK/.setup-done" ] && [ -x "$WORK/bin/node" ] && [ -d node_modules ] && [ -f build/Release/imagerate_cuda.node ]; then
    [ -f "$WORK/env.sh" ] && . "$WORK/env.sh"
    return 0
  fi
  local t0=$SECONDS
  # node
  if [ ! -x "$WORK/bin/node" ]; then
    xz -dc "$CARRY/node.xz" > "$WORK/bin/node.tmp" && chmod +x "$WORK/bin/node.tmp" && mv "$WORK/bin/node.tmp" "$WORK/bin/node" ||
      { log "cannot unpack node from $CARRY/node.xz"; return 1; }
  fi
  log "node $(node --version)"
  # node_modules
  if [ ! -d node_modules ]; then
    tar -xJf "$CARRY/node_modules.tar.xz" || { log "cannot unpack node_modules"; return 1; }
  fi
  # Vulkan loader for WebGPU: the machine's own if it has one, else the carried .debs.
  : > "$WORK/env.sh"
  local libs
  libs="$(/sbin/ldconfig -p 2>/dev/null || true)"
  if ! grep -q 'libvulkan.so.1 ' <<< "$libs"; then
    if ls "$CARRY"/debs/*.deb > /dev/null 2>&1; then
      for deb in "$CARRY"/debs/*.deb; do dpkg -x "$deb" "$WORK/vulkan"; done
      echo "export LD_LIBRARY_PATH=\"$WORK/vulkan/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\"" >> "$WORK/env.sh"
      log "Vulkan loader: carried .debs unpacked into $WORK/vulkan"
    else
      log "Vulkan loader: none on this machine and none carried (WebGPU will report unavailable)"
    fi
  else
    log "Vulkan loader: the machine's own ($(grep -m1 'libvulkan.so.1 ' <<< "$libs" | sed 's/^[[:space:]]*//'))"
  fi
  . "$WORK/env.sh"
  # native addons: the carried sm_90a build if it loads here, else build
  if [ "${IMAGERATE_GPU_REBUILD:-0}" != 1 ] && [ ! -f build/Release/imagerate_cuda.node ] && [ -f "$CARRY/prebuilt.tar.xz" ]; then
    mkdir -p build && tar -C build -xJf "$CARRY/prebuilt.tar.xz"
    if addon_loads build/Release/imagerate_cuda.node > "$LOGS/probe.log" 2>&1 && addon_loads build/Release/imagerate_cpu.node >> "$LOGS/probe.log" 2>&1; then
      log "using the prebuilt addons (built with $(cat build/Release/BUILT_WITH_GLIBC 2>/dev/null))"
    else
      log "the prebuilt addons do not load here: $(tail -n 3 "$LOGS/probe.log" | tr '\n' ' ')"
      rm -f build/Release/*.node build/Release/imagerate_cuda_harness
    fi
  fi
  if [ "${IMAGERATE_GPU_REBUILD:-0}" = 1 ] || [ ! -f build/Release/imagerate_cuda.node ]; then
    build_native || { log "native build failed (see logs/build-native*.log)"; return 1; }
  fi
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $IMAGERATE_COMMIT"
    echo "glibc: $(ldd --version | sed -n 1p)"
    echo "node: $(node --version)"
    echo "nvcc: $(nvcc --version 2>/dev/null | tail -n 2 | tr '\n' ' ')"
    echo "cmake: $(cmake --version 2>/dev/null | sed -n 1p)"
    echo "python: $(python3 -c 'import torch,sys;print(sys.version.split()[0],"torch",torch.__version__,"cuda",torch.version.cuda,"cudnn",torch.backends.cudnn.version())' 2>&1)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $NPROC"
    echo "probe: $(addon_loads build/Release/imagerate_cuda.node 2>&1)"
    nvidia-smi 2>&1
    vulkaninfo --summary 2>&1 | head -n 40 || true
  } > "$RES/env.txt" 2>&1
  touch "$WORK/.setup-done"
  log "setup done in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- stages
# The newest imagerate_cuda_harness under build/ (a rebuild's, not a stale prebuilt one).
harness_bin() {
  find build -name imagerate_cuda_harness -type f -perm -u+x -printf '%T@ %p\n' 2>/dev/null | sort -rn | sed -n 1p | cut -d' ' -f2-
}

# The harness binary, built first if there is none; a note in status.txt when that fails.
ensure_harness() {
  local h
  h="$(harness_bin)"
  if [ -z "$h" ]; then
    step build-harness 300 cmake --build build -j "$NPROC" --target imagerate_cuda_harness >&2
    h="$(harness_bin)"
  fi
  [ -n "$h" ] || printf '%-28s no imagerate_cuda_harness binary\n' "$1" | tee -a "$RES/status.txt" >&2
  echo "$h"
}

stage_harness() {
  local h
  h="$(ensure_harness harness)"
  [ -n "$h" ] || return 1
  step harness-validate 240 "$h" --validate
  local san
  san="$(command -v compute-sanitizer || true)"
  if [ -n "$san" ]; then
    step harness-memcheck 240 "$san" --tool memcheck --error-exitcode 9 "$h" --validate --quick
  else
    log "compute-sanitizer not found; memcheck skipped"
  fi
  step harness-bench 300 "$h" --bench --out "$RES/harness-bench.jsonl"
}

# The wgmma main loop (sm_90a; the harness's --wgmma, the addon's IMAGERATE_CUDA_WGMMA=1) in
# place of mma.sync for every GEMM and convolution at tf32/bf16/fp16: checked, memchecked, timed,
# then ResNet-50 and cifar10-tf on it; TF32 GEMMs with both operands k-contiguous (NT) run the
# TMA-fed loop there. (The harness stage already checks and times the wgmma GEMM variants at the
# square sizes.)
stage_wgmma() {
  local h san
  h="$(ensure_harness wgmma)"
  [ -n "$h" ] || return 1
  step harness-validate-wgmma 240 "$h" --validate --wgmma
  san="$(command -v compute-sanitizer || true)"
  [ -n "$san" ] && step harness-memcheck-wgmma 240 "$san" --tool memcheck --error-exitcode 9 "$h" --validate --quick --wgmma
  step harness-bench-wgmma 300 "$h" --bench --wgmma --out "$RES/harness-bench-wgmma.jsonl"
  for p in tf32 bf16; do
    step "bench-models-$p-wgmma" 270 env IMAGERATE_CUDA_WGMMA=1 node dist/cli.js bench models --model cifar10-tf,resnet50 \
      --batch 128,256 --mode training,inference --backend cuda --precision "$p" --seconds 1 --frameworks none \
      --out "$RES/models-cuda-wgmma.jsonl"
  done
}

stage_sanitize() {
  local h san tool
  h="$(ensure_harness sanitize)"
  [ -n "$h" ] || return 1
  san="$(command -v compute-sanitizer || true)"
  [ -n "$san" ] || { printf '%-28s compute-sanitizer not found\n' sanitize | tee -a "$RES/status.txt" >&2; return 1; }
  for tool in racecheck synccheck; do
    step "harness-$tool" 240 "$san" --tool "$tool" --error-exitcode 9 "$h" --validate --quick
  done
}

stage_pytorch() {
  local extra=()
  [ "$QUICK" = 1 ] && extra=(--quick)
  step pytorch-gpu 480 python3 bench/baselines/pytorch_gpu.py --out "$RES/pytorch_gpu.jsonl" "${extra[@]}"
  step pytorch-golden 120 python3 bench/baselines/pytorch_gpu.py --golden "$RES/golden/pytorch_gpu.safetensors"
}

stage_tests() {
  # The CUDA addon's own test and the op tests that run one body on every backend.
  local files=(test/native/cuda-addon.test.ts)
  for f in test/kernels/backend-ops.test.ts test/kernels/backend-gemm-conv.test.ts test/backend/registry.test.ts \
           test/reliability/device.test.ts test/reliability/leaks.test.ts; do
    [ -f "$f" ] && files+=("$f")
  done
  step vitest-cuda 420 node node_modules/vitest/vitest.mjs run --reporter=verbose "${files[@]}"
  # The other suites that run one body per backend (gradients, batch norm, the model zoo,
  # autograd, training), on cuda only; the tfjs parity suites cannot come (tfjs is not carried).
  local more=()
  for f in test/ops/gradcheck.test.ts test/ops/gradcheck-norm.test.ts test/kernels/norm.test.ts \
           test/models/models.test.ts test/autograd/autograd.test.ts test/train/train.test.ts \
           test/train/cuda-graph.test.ts; do
    [ -f "$f" ] && more+=("$f")
  done
  step vitest-cuda-suites 300 env IMAGERATE_TEST_BACKENDS=cuda node node_modules/vitest/vitest.mjs run --reporter=verbose "${more[@]}"
}

stage_bench() {
  local extra=()
  [ "$QUICK" = 1 ] && extra=(--quick)
  step bench-all-cuda 540 node dist/cli.js bench all --backend cuda --frameworks none --out-dir "$RES/bench-all" "${extra[@]}"
}

stage_models() {
  for p in fp32 tf32; do
    step "bench-models-$p" 270 node dist/cli.js bench models --model lenet5,cifar10-tf,resnet50 --batch 32,128,256 \
      --mode training,inference --backend cuda --precision "$p" --seconds 1 --frameworks none --out "$RES/models-cuda.jsonl"
  done
  # The small nets again with each step replayed as one CUDA graph (no per-op launch cost).
  step bench-models-graph 150 node dist/cli.js bench models --model lenet5,cifar10-tf --batch 32,128,256 \
    --mode training,inference --backend cuda --precision fp32 --seconds 1 --frameworks none --cuda-graph --out "$RES/models-cuda.jsonl"
}

stage_train() {
  # The CUDA issue's training figure: LeNet-5 to >= 97.5 % on the embedded MNIST split and the
  # time to it, eagerly and with each step one CUDA-graph replay. --json puts the summary alone
  # on stdout (the file); the progress and the table go to the step's log.
  local g
  for g in "" --cuda-graph; do
    step "train-lenet5-cuda${g:+-graph}" 240 sh -c 'node dist/cli.js train lenet5 --backend cuda --target 0.975 --json "$@" > "$0"' \
      "$RES/train-lenet5-cuda${g:+-graph}.json" $g
  done
  # Same seed, so the graph run must be the eager run: every epoch's losses and accuracy equal.
  step train-graph-vs-eager 30 node -e '
    const summary = (f) => {
      const lines = require("fs").readFileSync(f, "utf8").trim().split("\n");
      if (!lines[lines.length - 1]) { console.log(`${f} is empty: that run failed (see its log)`); process.exit(1); }
      return JSON.parse(lines[lines.length - 1]);
    };
    const [a, b] = process.argv.slice(1).map(summary);
    const pick = (s) => JSON.stringify(s.history.map((e) => [e.trainLoss, e.testLoss, e.testTop1]));
    console.log(`eager ${pick(a)}\ngraph ${pick(b)} (${b.cudaGraph ? b.cudaGraph.nodes + " nodes" : "no graph"})`);
    if (pick(a) !== pick(b) || !b.cudaGraph) { console.log("the --cuda-graph run differs from the eager run"); process.exit(1); }
    console.log("identical: the train loss, test loss and test top-1 of every epoch");' \
    "$RES/train-lenet5-cuda.json" "$RES/train-lenet5-cuda-graph.json"
}

stage_webgpu() {
  # The WebGPU issue's figure: WGSL SGEMM at 4096^3 (and 2048^3) through Dawn/Vulkan beside
  # cuBLAS fp32 from this same session. About 3-4 minutes in all on an H100 (estimate; not yet
  # run there): cuBLAS square GEMMs (4 precisions x 2 sizes), the gemm.wgsl variant sweep (each
  # variant checked against float64 on sampled elements, then timed; the table names the best),
  # the sweep again at 4096 with Tint's robustness transform off (what the bounds clamps cost;
  # Dawn toggle disable_robustness), Backend.gemm with the default variant and with the sweep's
  # winner (IMAGERATE_WEBGPU_GEMM), the summary against cuBLAS, then the LeNet kernel suite.
  step pytorch-sgemm 120 python3 bench/baselines/pytorch_gpu.py --only kernels --suites '' --gemm-sizes 2048,4096 \
    --out "$RES/pytorch_sgemm.jsonl"
  step bench-gemm-webgpu-variants 240 node dist/cli.js bench gemm --backend webgpu --sizes 4096,2048 --variants all \
    --out "$RES/gemm-webgpu-variants.jsonl"
  step bench-gemm-webgpu-norobust 150 env IMAGERATE_WEBGPU_DAWN="enable-dawn-features=disable_robustness" \
    node dist/cli.js bench gemm --backend webgpu --sizes 4096 --variants all --rounds 2 --out "$RES/gemm-webgpu-variants-norobust.jsonl"
  step bench-gemm-webgpu 180 node dist/cli.js bench gemm --backend webgpu --sizes 1024,2048,4096 --out "$RES/gemm-webgpu.jsonl"
  # The first "best at" line of the sweep's table is the first size given (4096).
  local best
  best="$(grep -o 'IMAGERATE_WEBGPU_GEMM=[0-9a-z_]*' "$LOGS/bench-gemm-webgpu-variants.log" 2>/dev/null | sed -n 1p)"
  if [ -n "$best" ]; then
    log "sweep winner at 4096: $best"
    step bench-gemm-webgpu-best 120 env "$best" node dist/cli.js bench gemm --backend webgpu --sizes 2048,4096 --out "$RES/gemm-webgpu.jsonl"
  fi
  step gemm-webgpu-summary 30 node scripts/wgsl/gemm-vs-cublas.mjs "$RES/pytorch_sgemm.jsonl" \
    "$RES/gemm-webgpu-variants.jsonl" "$RES/gemm-webgpu-variants-norobust.jsonl" "$RES/gemm-webgpu.jsonl"
  cp "$LOGS/gemm-webgpu-summary.log" "$RES/gemm-webgpu-summary.txt" 2>/dev/null || true
  step bench-kernels-webgpu 240 node dist/cli.js bench kernels --backend webgpu --suite lenet --out "$RES/kernels-webgpu.jsonl"
}

[ $# -gt 0 ] || set -- setup
for stage in "$@"; do
  case "$stage" in
    setup) setup ;;
    harness | sanitize | wgmma | pytorch | tests | bench | models | train | webgpu)
      if [ "$stage" != pytorch ]; then setup || { log "setup failed; skipping $stage"; continue; }; fi
      "stage_$stage" ;;
    *) log "unknown stage '$stage' (setup harness sanitize wgmma pytorch tests bench models train webgpu)"; exit 2 ;;
  esac
done
log "done: $(ls "$RES" | tr '\n' ' ')"
cat "$RES/status.txt" 2>/dev/null >&2 || true
