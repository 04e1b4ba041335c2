#!/usr/bin/env bash
# The whole GPU check in one device call (docs/cuda.md): unpack what tools/device/pack.sh packed,
# build the addon with CUDA, then the native CUDA checks, the GPU tests, the CUDA benchmark and the
# serving benchmark on the GPU. Each step has its own time limit so that one hang cannot eat the
# call; every step's log and a one-line-per-step summary go to $OUT (at most 8 files come back).
# The limits add up to under the tool's 600 s per call (build ~2 min on 16 cores, sm_90 only).
#   STEPS="build native" bash tools/device/gpu-check.sh     # a subset, in this order
#   DEVICE=cpu STEPS="build serving" bash tools/device/gpu-check.sh   # the plumbing, on a machine without a GPU
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${OUT:-$root/.device/out}
mkdir -p "$out"
steps=${STEPS:-"build tests bench serving native"}
jobs=$(nproc)

tar xJf .device/node.tar.xz -C .device && tar xJf .device/napi-headers.tar.xz -C .device || { echo "no .device pack: run tools/device/pack.sh here first" | tee "$out/summary.txt"; exit 1; }
tar xJf .device/npm.tar.xz -C .device  # node-gyp, where native/build.mjs looks beside node
tar xJf .device/nodedir.tar.xz -C .device  # Node's headers and .gypi files, for node-gyp
[ -f .device/extra.tar.xz ] && tar xJf .device/extra.tar.xz
export PATH=$root/.device/node/bin:$PATH:/usr/local/cuda/bin npm_config_nodedir=$root/.device/nodedir
command -v nvcc >/dev/null || { echo "nvcc not found (PATH, /usr/local/cuda/bin): the CUDA backend cannot be built" | tee "$out/summary.txt"; exit 1; }
{ echo "node $(node --version), $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi'), nvcc $(nvcc --version 2>/dev/null | tail -1)"; } | tee "$out/summary.txt"

# step NAME SECONDS COMMAND...: runs it with a limit, its output to $OUT/NAME.log, rc to the summary
step() {
  local name=$1 limit=$2
  shift 2
  case " $steps " in *" $name "*) ;; *) return 0 ;; esac
  local t0=$SECONDS
  echo "== $name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$out/$name.log"
  echo "$name: rc $rc in $((SECONDS - t0)) s" | tee -a "$out/summary.txt"
  return $rc
}

step build 200 env FLOTILLA_CUDA=1 FLOTILLA_CUDA_JOBS=$jobs FLOTILLA_CUDA_ARCHS=90 node native/build.mjs || { echo "build failed: nothing else runs" | tee -a "$out/summary.txt"; exit 1; }
step tests 90 env FLOTILLA_TEST_GPU=1 node_modules/.bin/vitest run --config test/gpu/vitest.config.ts
step bench 100 node_modules/.bin/tsx bench/cuda/run.ts --quick
step serving 110 node_modules/.bin/tsx bench/engine-serving/run.ts --device "${DEVICE:-cuda}" --quick
# last: engine-test compiles the CUDA sources a second time (its own CMake build)
step native 80 bash -c "cd native && cmake -S . -B build/cmake-gpu -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build/cmake-gpu -j$jobs >/dev/null && ./build/cmake-gpu/engine-test --device cuda"
for kind in cuda engine-serving; do  # this run's result files (the newest of each)
  f=$(ls -t bench/results/$kind-*.json 2>/dev/null | head -1)
  [ -n "$f" ] && cp "$f" "$out/"
done
ls "$out" | head -8
