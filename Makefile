# Everything starts from a fresh Debian machine: the targets install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json

.PHONY: help deps system-deps build lint typecheck test test-unit test-integration test-browser chaos demo clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

system-deps: ## install etcd from Debian's packages when it is not on PATH
	@./scripts/install-system-deps.sh

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

deps: system-deps $(NPM_STAMP) ## install system and npm dependencies

build: $(NPM_STAMP) ## compile TypeScript to dist/
	npm run build

lint: $(NPM_STAMP) ## eslint and prettier
	npx eslint .
	npx prettier --check .

typecheck: $(NPM_STAMP) ## type-check sources and tests
	npx tsc -p tsconfig.json --noEmit

test-unit: deps build ## unit tests only
	npx mocha 'test/unit/**/*.test.ts'

test-integration: deps build ## integration tests against real etcd clusters
	npx mocha 'test/integration/**/*.test.ts'

test-browser: deps build ## the status page in Debian's Chromium (screenshot in test-artifacts/)
	npx mocha 'test/browser/**/*.test.ts'

chaos: deps build ## the chaos suite: faults under load, invariants checked (test-artifacts/reliability.md)
	npx mocha 'test/chaos/**/*.test.ts'

test: deps build lint typecheck ## every test (lint, types, unit, integration, browser, chaos)
	npm test

demo: deps build ## a local 3-member etcd cluster and members a, b, c on ports 8081-8083
	node dist/src/cli.js demo

clean: ## remove build output
	rm -rf dist
