# syntax=docker/dockerfile:1
#
# Flotilla's image: the repository at /app with its production dependencies and the native engine built
# for this image's platform. The manifests `serve build` writes run it as `node bin/serve.js ...` in /app.
#
#   docker build -t flotilla:0.1.0 .
#   docker run --rm -p 8000:8000 flotilla:0.1.0                                   # examples/default.ts:app
#   docker run --rm -p 8000:8000 flotilla:0.1.0 run examples/pipeline.ts:app --host 0.0.0.0
#
# With the CUDA backend (nvcc in the build stage; the addon links cudart statically, so the run stage
# needs only the NVIDIA driver, which the NVIDIA container runtime mounts):
#
#   docker build -t flotilla:0.1.0-cuda \
#     --build-arg BUILD_BASE=nvidia/cuda:12.6.3-devel-ubuntu22.04 \
#     --build-arg BASE=nvidia/cuda:12.6.3-runtime-ubuntu22.04 \
#     --build-arg FLOTILLA_CUDA=1 --build-arg FLOTILLA_CUDA_ARCHS=80,90 .
#   docker run --rm --gpus all -p 8000:8000 flotilla:0.1.0-cuda
#
# Containers must run `node bin/serve.js` itself (as here and in the manifests), never `npm start`: npm
# does not forward SIGTERM, so the server would not drain and would be killed at the grace period's end.
#
# test/integration/packaging-image.test.ts runs this file's build and run stages as shell steps in a
# clean clone (no Docker there), so keep every RUN that touches /app to commands a shell can run as-is
# in the working directory: relative paths only.

ARG NODE_IMAGE=node:20-bookworm-slim
# Any glibc Linux image with apt works as a base: Node comes from NODE_IMAGE.
ARG BUILD_BASE=debian:bookworm-slim
ARG BASE=debian:bookworm-slim

FROM ${NODE_IMAGE} AS node

# --- build: the toolchain, `npm ci --omit=dev` (which builds native/ through native/build.mjs) -------
FROM ${BUILD_BASE} AS build
# 0: CPU only (the default; a build host's nvcc is ignored); 1: CUDA backend, fatal if nvcc fails.
ARG FLOTILLA_CUDA=0
ARG FLOTILLA_CUDA_ARCHS=80,90
RUN apt-get update \
  && apt-get install -y --no-install-recommends g++ make python3 \
  && rm -rf /var/lib/apt/lists/*
# Node, npm (with its node-gyp) and Node's C headers (include/node, which native/build.mjs looks for).
COPY --from=node /usr/local/ /usr/local/
ENV FLOTILLA_CUDA=${FLOTILLA_CUDA} \
  FLOTILLA_CUDA_ARCHS=${FLOTILLA_CUDA_ARCHS} \
  npm_config_update_notifier=false
WORKDIR /app
# Dependencies first (their layer is kept until the lockfile or native/ changes).
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/engine/package.json packages/engine/
COPY packages/deployments/package.json packages/deployments/
COPY native native
RUN npm ci --omit=dev --no-audit --no-fund --foreground-scripts
# Keep the addon; drop its objects and sources (the run stage copies /app as it is).
RUN rm -rf native/build/Release/obj.target native/build/Release/.deps native/build/cuda native/build/cmake-test \
  native/src native/test
COPY tsconfig.json ./
COPY bin bin
COPY protos protos
COPY packages packages
COPY examples examples
COPY models models

# --- run: Node and /app only (no compiler, no npm), as an unprivileged user --------------------------
FROM ${BASE} AS run
RUN groupadd --system --gid 10001 flotilla \
  && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/flotilla flotilla
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=build /app /app
WORKDIR /app
ENV NODE_ENV=production
# Numeric, so Kubernetes' runAsNonRoot can verify it. /app is root's and read-only to this user; Flotilla
# writes only under $HOME/.flotilla (a generated cluster token) and the temporary directory.
USER 10001:10001
EXPOSE 8000 9000 9100
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8000/-/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/serve.js"]
CMD ["run", "examples/default.ts:app", "--host", "0.0.0.0"]
