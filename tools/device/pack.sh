#!/usr/bin/env bash
# Prepares .device/ (ignored by git) for one GPU check on the project's device machine, which has
# nvcc, CMake and PyTorch but no Node, no network and no ../shared: Node and the Node-API headers
# (../shared/tools/device-pack.sh) with npm's node-gyp (the addon's build runs it), the node_modules the GPU tests and benchmarks import (without the
# type checker, the browser driver and other build-only packages), and the shared test models.
# Run here, from the checkout root, after `npm install`; then on the device, in one call:
#   run(command: "bash tools/device/gpu-check.sh", carry: [".device"], timeout_s: 600)
# (docs/cuda.md). What travels must stay under the device tool's 64 MiB: this prints the total.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
[ -d node_modules ] || { echo "run npm install first" >&2; exit 1; }
shared=${FLOTILLA_SHARED:-$root/../shared}
rm -rf .device && mkdir -p .device
# node_modules without what the GPU run does not load (tsc, playwright, lint/type packages, docs).
bash "$shared/tools/device-pack.sh" \
  --exclude=node_modules/typescript --exclude=node_modules/playwright-core --exclude=node_modules/playwright \
  --exclude=node_modules/@types --exclude='node_modules/*/README.md' --exclude='node_modules/**/*.map' \
  --exclude='node_modules/**/*.d.ts' --exclude='node_modules/**/*.d.mts' --exclude='node_modules/**/*.d.cts' \
  node_modules
# npm's own folder, where native/build.mjs finds node-gyp (beside the node binary: node/lib/node_modules/npm)
stage=$(mktemp -d)
mkdir -p "$stage/node/lib/node_modules"
cp -r "$(npm root -g)/npm" "$stage/node/lib/node_modules/"
tar cJf .device/npm.tar.xz -C "$stage" --exclude='npm/docs' --exclude='npm/man' node
rm -rf "$stage"
# Node's full header folder (node-gyp reads common.gypi and config.gypi beside the headers; the
# N-API headers alone are not enough), without OpenSSL's, which the addon does not include
inc=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node
[ -f "$inc/common.gypi" ] || inc="$(node -p 'process.config.variables.node_prefix')/include/node"
[ -f "$inc/common.gypi" ] || inc=/usr/include/node
tar cJf .device/nodedir.tar.xz --exclude=openssl --transform "s,^node,nodedir/include/node," -C "$(dirname "$inc")" node
# (the test models travel with the working tree: test/fixtures/models)
du -ch .device/* | tail -1 | sed 's/total/travels with carry .device:/'
