#!/usr/bin/env bash
# build-gyp.sh: builds the CPU addon with node-gyp from bindings.gyp (for machines without CMake)
# and prints the path of the resulting imagerate_cpu.node.
#
#   bash scripts/build-gyp.sh [STAGE_DIR]     (default: build-gyp/ in the repository, git-ignored)
#
# Steps:
#   1. Checks that bindings.gyp names every kernels/cpu/*.cc, native/cpu_*.cc and native/op_*.cc (and
#      native/gemm_bench.cc when present), each in the right target (*_avx2.cc in the AVX2
#      library, nothing else there), and that every file it names exists. Fails loudly otherwise.
#   2. Stages STAGE_DIR: bindings.gyp copied as binding.gyp (the name node-gyp insists on), with
#      symlinks to native/, kernels/ and node_modules/. node-gyp's ./build then lands in
#      STAGE_DIR/build and never collides with cmake-js's build/.
#   3. Runs node-gyp offline: the project's own node-gyp if installed, else the copy bundled with
#      npm, with --nodedir (default: the prefix of the running node, /usr here; override with
#      NODEDIR=...). JOBS (default 2) sets the parallel compile jobs.
#   4. Loads the result with RTLD_NOW (every symbol must resolve) and checks info().addon == "gyp".
# Test it with: IMAGERATE_CPU_ADDON=<printed path> npx vitest run test/native
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stage="${1:-$root/build-gyp}"
jobs="${JOBS:-2}"
cd "$root"

# ---------------------------------------------------------------- 1. source lists complete?
python3 - "$root" <<'PY'
import ast, glob, os, sys
root = sys.argv[1]
with open(os.path.join(root, 'bindings.gyp')) as f:
    gyp = ast.literal_eval(f.read())
targets = {t['target_name']: set(t.get('sources', [])) for t in gyp['targets']}
avx2, main = targets.get('imagerate_cpu_avx2', set()), targets.get('imagerate_cpu', set())
on_disk = sorted(os.path.relpath(p, root) for p in
                 glob.glob(os.path.join(root, 'kernels/cpu/*.cc')) + glob.glob(os.path.join(root, 'native/cpu_*.cc')) + glob.glob(os.path.join(root, 'native/op_*.cc')))
if os.path.exists(os.path.join(root, 'native/gemm_bench.cc')):
    on_disk.append('native/gemm_bench.cc')
problems = []
for src in on_disk:
    want, other = (avx2, main) if src.endswith('_avx2.cc') else (main, avx2)
    where = "imagerate_cpu_avx2" if src.endswith('_avx2.cc') else "imagerate_cpu"
    if src not in want:
        problems.append(f"  {src} is not in the sources of target '{where}'")
    if src in other:
        problems.append(f"  {src} is in the wrong target (it belongs only in '{where}')")
for src in sorted(avx2 | main):
    if not os.path.exists(os.path.join(root, src)):
        problems.append(f"  {src} is named in bindings.gyp but does not exist")
if problems:
    sys.stderr.write("build-gyp: bindings.gyp is out of date with the source tree:\n" + "\n".join(problems) +
                     "\nEdit the 'sources' lists in bindings.gyp (CMakeLists.txt picks files up by glob).\n")
    sys.exit(1)
print(f"build-gyp: bindings.gyp names all {len(on_disk)} sources")
PY

# ---------------------------------------------------------------- 2. stage
rm -rf "$stage"
mkdir -p "$stage"
cp bindings.gyp "$stage/binding.gyp"
for d in native kernels node_modules; do ln -s "$root/$d" "$stage/$d"; done

# ---------------------------------------------------------------- 3. node-gyp, offline
nodedir="${NODEDIR:-$(node -p "require('path').resolve(process.execPath, '..', '..')")}"
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "build-gyp: no Node headers under $nodedir/include/node; set NODEDIR to a Node install or source tree" >&2
  exit 1
fi
if [ -f "$root/node_modules/node-gyp/bin/node-gyp.js" ]; then
  gyp_js="$root/node_modules/node-gyp/bin/node-gyp.js"
else
  gyp_js="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
fi
if [ ! -f "$gyp_js" ]; then
  echo "build-gyp: node-gyp not found (neither in node_modules nor bundled with npm)" >&2
  exit 1
fi
echo "build-gyp: $(node "$gyp_js" --version 2>/dev/null | tail -1) in $stage (nodedir $nodedir, $jobs jobs)"
(cd "$stage" && node "$gyp_js" rebuild --nodedir="$nodedir" --jobs="$jobs" --loglevel=warn)

# ---------------------------------------------------------------- 4. does it load?
addon="$stage/build/Release/imagerate_cpu.node"
node -e '
const os = require("os");
const m = { exports: {} };
process.dlopen(m, process.argv[1], os.constants.dlopen.RTLD_NOW);
const info = m.exports.info();
if (info.addon !== "gyp") throw new Error(`expected info().addon "gyp", got ${info.addon}`);
console.error(`build-gyp: loads fine (isa ${info.isa}, ${info.threads} threads)`);
' "$addon"
echo "$addon"
