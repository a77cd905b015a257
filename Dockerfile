# syntax=docker/dockerfile:1
# The pool member image: `make image`, or `docker build -t service-pool-leader:dev .`.
#
# Build stage: the same steps as `make test` (npm ci, npm run build), then drop the
# development dependencies. test/chart/dockerfile.test.ts keeps the two in step.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
RUN npm prune --omit=dev

# Runtime stage: compiled JavaScript and production dependencies only, owned by root and
# run by the unprivileged `node` user (uid 1000) of the base image, so the process cannot
# modify its own code. Nothing is written outside /tmp (logs go to stdout), so the root
# filesystem can be read-only, as the chart and the manifests mount it.
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
USER 1000:1000
EXPOSE 8080
# Exec form: node is PID 1 and receives SIGTERM directly. It installs its own SIGTERM and
# SIGINT handlers (graceful shutdown: release leadership, drain, revoke the lease, exit 0)
# and starts no child processes, so no init (tini) is needed to forward signals or reap
# zombies.
CMD ["node", "dist/src/cli.js", "serve"]
