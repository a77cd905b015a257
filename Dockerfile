# syntax=docker/dockerfile:1
# The pool member image: `make image`, or `docker build -t service-pool-leader:dev .`.
#
# NODE_IMAGE is the base of both stages: the official image by default; a stand-in with the
# same layout (node and npm on PATH, a `node` user with uid 1000) is passed with
# `--build-arg NODE_IMAGE=...` where no image registry is reachable (make standin-images).
ARG NODE_IMAGE=node:24-slim

# Build stage: compiles src/ with `npm run build`, as `make build` does, but fetches only what
# compiling needs. image/compiler holds its own locked set (typescript, @types/node,
# @types/express at the root devDependencies' versions), installed one folder above the app:
# `npm run build` finds ../node_modules/.bin/tsc on its PATH and tsc finds ../node_modules/@types
# by walking up. The app's own `npm ci` then installs production dependencies only, so no
# prune step, and none of the test tooling (helm layers, playwright, eslint) is downloaded.
# test/chart/dockerfile.test.ts replays these steps and keeps the two sets in step.
FROM ${NODE_IMAGE} AS build
WORKDIR /build/app
COPY image/compiler/package.json image/compiler/package-lock.json ../
RUN npm ci --prefix .. --no-audit --no-fund
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: compiled JavaScript and production dependencies only, owned by root and
# run by the unprivileged `node` user (uid 1000) of the base image, so the process cannot
# modify its own code. Nothing is written outside /tmp (logs go to stdout), so the root
# filesystem can be read-only, as the chart and the manifests mount it.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /build/app/package.json ./package.json
COPY --from=build /build/app/node_modules ./node_modules
COPY --from=build /build/app/dist/src ./dist/src
USER 1000:1000
EXPOSE 8080
# Exec form: node is PID 1 and receives SIGTERM directly. It installs its own SIGTERM and
# SIGINT handlers (graceful shutdown: release leadership, drain, revoke the lease, exit 0)
# and starts no child processes, so no init (tini) is needed to forward signals or reap
# zombies.
CMD ["node", "dist/src/cli.js", "serve"]
