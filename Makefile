# The front door. `make dev` runs the whole product locally; `make test` is
# what CI runs (.ci/run). Everything local runs on 127.0.0.1 with state in .dev/.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DEVSTACK := .dev/bin/devstack
GO_TEST_FLAGS ?= -count=1

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# --- local ------------------------------------------------------------------

.PHONY: devstack
devstack: ## build the local stack program (scripts/cmd/devstack)
	@mkdir -p .dev/bin
	@cd scripts && GOWORK=off go build -o ../$(DEVSTACK) ./cmd/devstack

.PHONY: dev
dev: devstack ## run Postgres, S3, MongoDB and the service on https://localhost:8443 (Ctrl-C stops all)
	@$(DEVSTACK) dev

.PHONY: stack
stack: devstack ## run only the local stack (Postgres, S3, MongoDB) until Ctrl-C
	@$(DEVSTACK) up

.PHONY: seed
seed: devstack ## upload the readsb-hist samples to the local bucket
	@$(DEVSTACK) seed

# --- tests ------------------------------------------------------------------

.PHONY: test
test: test-app test-scripts ## everything CI runs: unit + integration tests on the real local stack, infra tests, local e2e, lint

.PHONY: test-app
test-app: devstack ## app unit and integration tests (starts the local stack)
	@$(DEVSTACK) exec -- go -C app test $(GO_TEST_FLAGS) ./...

.PHONY: test-scripts
test-scripts: devstack ## local stack program: unit + its integration tests
	@$(DEVSTACK) exec -- env GOWORK=off go -C scripts test $(GO_TEST_FLAGS) ./...

# --- benchmarks -------------------------------------------------------------

.PHONY: bench-ingest
bench-ingest: devstack ## ingest >= 1 GB of generated readsb-hist snapshots S3 -> Postgres; prints MB/s, obs/s, RSS, p99
	@$(DEVSTACK) exec -- go -C app run ./cmd/bench-ingest
