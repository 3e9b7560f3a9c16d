# hostpath-provisioner — every target runs on Node >= 22.19. When the `node` on PATH is older,
# a pinned Node 24 LTS is installed from the npm registry (package node-linux-<arch>) into .tools/.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_VERSION := 24.22.3
NODE_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x64)
NODE_OK := $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)' 2>/dev/null && echo yes)
ifeq ($(NODE_OK),yes)
NODE_STAMP :=
else
NODE_DIR := $(CURDIR)/.tools/node-$(NODE_VERSION)
NODE_BIN := $(NODE_DIR)/node_modules/node-linux-$(NODE_ARCH)/bin
NODE_STAMP := $(NODE_BIN)/node
export PATH := $(NODE_BIN):$(PATH)
endif

DEPS := node_modules/.package-lock.json
JEST := node --experimental-vm-modules node_modules/jest/bin/jest.js
VERSION := $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' package.json)
IMAGE ?= hostpath-provisioner:$(VERSION)
KUBECTL ?= kubectl

$(NODE_DIR)/node_modules/node-linux-$(NODE_ARCH)/bin/node:
	@echo "==> installing Node $(NODE_VERSION) into .tools/ (the node on PATH is older than 22.19)"
	@mkdir -p $(NODE_DIR)
	@npm install --prefix $(NODE_DIR) --no-save --no-audit --no-fund --loglevel=error node-linux-$(NODE_ARCH)@$(NODE_VERSION) >/dev/null
	@$@ --version

$(DEPS): package-lock.json package.json | $(NODE_STAMP)
	@echo "==> npm ci (node $$(node --version))"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: help deps build lint typecheck test-unit test-e2e test run demo clean image deploy bench

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: $(DEPS) ## install Node 24 (if needed) and the npm dependencies

build: $(DEPS) ## compile TypeScript to dist/
	@npx tsc -p tsconfig.build.json

lint: $(DEPS) ## eslint (type-aware) and prettier --check
	@npx eslint . && npx prettier --check . --log-level warn && echo "lint ok"

typecheck: $(DEPS) ## tsc --noEmit over sources and tests
	@npx tsc -p tsconfig.json --noEmit && echo "typecheck ok"

test-unit: $(DEPS) ## unit tests (test/), no cluster, with coverage
	@$(JEST) --selectProjects unit --coverage

test-e2e: build ## end-to-end tests on the real control plane (e2e/; starts it, leaves it running)
	@$(JEST) --selectProjects e2e --runInBand

test: lint typecheck test-unit test-e2e ## everything CI runs

run: build ## run the CLI: make run ARGS="run --kubeconfig ..."
	@node dist/src/cli/main.js $(ARGS)

demo: build ## build a real control plane, run the provisioner, bind a claim on a tainted node
	@bash e2e/demo.sh

image: ## build the image hostpath-provisioner:<version> with Docker, else buildah; also dist/image.tar (IMAGE=... to rename)
	@IMAGE=$(IMAGE) bash e2e/image/build.sh

deploy: ## replace the MicroK8s addon: kubectl apply -k manifests/overlays/microk8s (KUBECTL=... to override)
	$(KUBECTL) apply -k manifests/overlays/microk8s

bench: build ## measure provisioners side by side on N stand-in nodes (BENCHMARKS.md): make bench ARGS="--claims 200 --runs 3"
	@node dist/bench/main.js $(ARGS)

clean: ## remove build output (keeps .tools/ and the cluster binary cache)
	@rm -rf dist coverage

include e2e/cluster/cluster.mk

cluster-up: build
