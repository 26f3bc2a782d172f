# The front door. `make dev` runs the whole product locally; `make test` is
# what CI runs (.ci/run). Everything local runs on 127.0.0.1 with state in .dev/.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DEVSTACK := .dev/bin/devstack
GO_TEST_FLAGS ?= -count=1

# Everything make builds is compiled as the release is (infra/appbuild): without cgo, with -trimpath, and with gin's
# nomsgpack tag (its msgpack binding, which the service never uses, pulls in ugorji's codec, one of the slowest packages
# to compile). So the linters, the suites and the release binaries they test share one compile of each package, which
# is most of make test's time on a cold cache; only the race detector's build (test-app) needs cgo.
export CGO_ENABLED := 0
export GOFLAGS := -trimpath -tags=nomsgpack

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

.PHONY: test test-after-lint
# lint runs go vet's whole set over every package and its tests first, so the suites skip go test's own vet pass (its
# facts for every dependency, in each build configuration, cost minutes on a cold cache).
test: GO_TEST_FLAGS += -vet=off
# The suites run side by side on one local stack (each uses databases, buckets and ports of its own): most of their
# time is waiting on processes, servers and timeouts. The app's race-detector build shares no compile with lint, so it
# runs beside lint; the others reuse lint's compile, so they start after it. Each suite's output comes in one piece.
test: devstack ## everything CI runs: lint, and side by side on the real local stack: app unit + integration tests, the stack program's, infra tests, local e2e
	@$(DEVSTACK) exec -- $(MAKE) --no-print-directory -j 6 --output-sync=target GO_TEST_FLAGS='$(GO_TEST_FLAGS)' \
		test-app test-after-lint
test-after-lint: lint
	@$(MAKE) --no-print-directory --output-sync=target test-scripts test-infra test-bench e2e

.PHONY: test-app
test-app: devstack ## app unit and integration tests, with the race detector (starts the local stack)
	@$(DEVSTACK) exec -- env CGO_ENABLED=1 go -C app test -race $(GO_TEST_FLAGS) ./...

.PHONY: test-scripts
test-scripts: devstack ## local stack program: unit + its integration tests
	@$(DEVSTACK) exec -- env GOWORK=off go -C scripts test $(GO_TEST_FLAGS) ./...

.PHONY: test-bench
test-bench: ## the benchmarks' own unit tests (snapshot generator, run order and summaries, scraper, /proc); no benchmark runs
	@go test $(GO_TEST_FLAGS) ./bench/...

.PHONY: test-infra
test-infra: ## infra tests, offline: seed assertions, cdk-nag, reproducibility, bootstrap scripts
	@$(MAKE) -C infra test GO_TEST_FLAGS='$(GO_TEST_FLAGS)'

.PHONY: e2e
e2e: devstack ## local end to end: aircraftd as built for the instance, on the local stack, over pinned HTTPS (+ the hostile-files run and the AWS suite's offline tests)
	@$(DEVSTACK) exec -- env E2E_AWS= go test $(GO_TEST_FLAGS) -timeout 30m ./test/...

.PHONY: e2e-aws
e2e-aws: ## AWS end to end: deploy a stack of its own, check it over HTTPS, destroy it (E2E_AWS=1 and AWS credentials; docs/e2e.md)
	@go test $(GO_TEST_FLAGS) -v -timeout 170m -run '^TestAWS$$' ./test/awsstack/

FUZZTIME ?= 5m
.PHONY: fuzz
fuzz: ## run each fuzz target (decoder, merge of partial statistics) for FUZZTIME (default 5m); not part of make test
	@cd app && go test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/readsb/
	@cd app && go test -run '^$$' -fuzz '^FuzzMerge$$' -fuzztime $(FUZZTIME) ./internal/flight/

GO_FILES = $$(git ls-files '*.go')

.PHONY: fmt
fmt: ## gofmt every Go file in git, and rewrap its comments at 120 columns (scripts/cmd/commentwrap)
	@gofmt -w $(GO_FILES)
	@mkdir -p .dev/bin && cd scripts && GOWORK=off go build -o ../.dev/bin/commentwrap ./cmd/commentwrap
	@.dev/bin/commentwrap -w $(GO_FILES)

.PHONY: lint
lint: ## actionlint on the workflows; gofmt, comment wrapping (120 columns) and go vet over every Go file in git (the app's platform-specific package also for macOS), staticcheck on every module; shellcheck
	@cd scripts && GOWORK=off go tool actionlint ../.github/workflows/*.yml
	@unformatted=$$(gofmt -l $(GO_FILES)); test -z "$$unformatted" || { echo "$$unformatted"; echo "gofmt: files above need formatting (make fmt)" >&2; exit 1; }
	@mkdir -p .dev/bin && cd scripts && GOWORK=off go build -o ../.dev/bin/commentwrap ./cmd/commentwrap
	@.dev/bin/commentwrap $(GO_FILES)
	@go vet $$(git ls-files '*.go' | grep -v '^scripts/' | xargs -n1 dirname | sort -u | sed 's|^|./|')
	@# The service builds on macOS: its only platform-specific code is this package, whose test checks that its Linux and
	@# other-platform files declare the same functions (vetting all of app/ for darwin compiles every dependency again).
	@GOOS=darwin go vet ./app/internal/download/fetch/disk
	@cd scripts && GOWORK=off go vet ./...
	@mkdir -p .dev/bin && cd scripts && GOWORK=off go build -o ../.dev/bin/staticcheck honnef.co/go/tools/cmd/staticcheck
	@# test/awsstack is left to go vet: staticcheck would analyze from source the AWS SDK services only it calls (EC2, RDS,
	@# CloudFormation, Auto Scaling, SSM), and EC2's alone is larger than the rest of the tree.
	@.dev/bin/staticcheck ./app/... ./bench/... ./infra/... $$(go list ./test/... | grep -v /test/awsstack)
	@cd scripts && GOWORK=off ../.dev/bin/staticcheck ./...
	@$(MAKE) -s -C infra shellcheck
	@shellcheck .ci/run

# --- AWS (infra/Makefile; CONTEXT="-c stackName=you", CDK_FLAGS=…) ---------

.PHONY: synth diff deploy destroy bootstrap diagram
synth: ## CDK synth of infra/ (offline, no AWS credentials)
	@$(MAKE) -C infra synth
diff: ## cdk diff against the deployed stack
	@$(MAKE) -C infra diff
deploy: ## cdk deploy; returns when the new release is healthy on the instance
	@$(MAKE) -C infra deploy
destroy: ## cdk destroy of one named stack: make destroy STACK=<name>
	@$(MAKE) -C infra destroy
bootstrap: ## cdk bootstrap (once per account and region)
	@$(MAKE) -C infra bootstrap
diagram: ## regenerate the architecture picture (docs/architecture.md, README) from the synthesized template
	@$(MAKE) -C infra diagram

# Operator commands on a deployed stack (scripts/cmd/ops): the AWS CLI's profile and region apply (AWS_PROFILE,
# AWS_REGION); ARGS go to `aws logs tail` (e.g. ARGS="--since 1h --filter-pattern ERROR").
OPS := .dev/bin/ops
.PHONY: logs shell status ops
ops:
	@mkdir -p .dev/bin
	@cd scripts && GOWORK=off go build -o ../$(OPS) ./cmd/ops
logs: ops ## follow the service's log group: make logs STACK=<name> [ARGS="--since 1h"]
	@$(OPS) logs "$(STACK)" $(ARGS)
shell: ops ## a shell on the instance (or one of the fleet's) through Session Manager: make shell STACK=<name>
	@$(OPS) shell "$(STACK)"
status: ops ## outputs, /api/v1/ready over HTTPS, alarms (ALARM first), release on the instance(s): make status STACK=<name>
	@$(OPS) status "$(STACK)"

# --- benchmarks -------------------------------------------------------------

# Each target runs the app's Go benchmarks of the parts alone (they need app internals), then the service's benchmark
# from the bench module (aircraftd as built for the instance, started as the e2e suite starts it): all figures of one
# run, printed one after the other. BENCH_ARGS go to the bench module's command (e.g. BENCH_ARGS="-bytes 500000000";
# BENCH_ARGS="-metrics-off" also runs the service with METRICS_ADDR=off, interleaved, and compares). BENCH_BEFORE=
# <checkout>/app also runs that code's service, interleaved.
BENCH_ARGS ?=
BENCH_BEFORE ?=
BENCH_RUNS ?= 5

.PHONY: bench-ingest
bench-ingest: devstack ## ingest >= 1 GB of generated readsb-hist snapshots: decode alone (MB/s), then the service S3 -> Postgres (MB/s, obs/s, RSS, p99) (BENCH_ARGS="-runs 3 -metrics-off", BENCH_BEFORE=<checkout>/app: variants, interleaved)
	@data=$$(mktemp -d) && trap 'rm -rf "$$data"' EXIT && \
	go -C bench run ./cmd/bench-ingest -generate "$$data" $(BENCH_ARGS) && \
	BENCH_SNAPSHOTS="$$data" go -C app test -run '^$$' -bench '^BenchmarkDecodeAggregate$$' -benchtime 3x ./internal/ingest && \
	$(DEVSTACK) exec -- go -C bench run ./cmd/bench-ingest -data "$$data" $(BENCH_ARGS) $(if $(BENCH_BEFORE),-before $(BENCH_BEFORE))

.PHONY: bench-backfill
bench-backfill: devstack ## a backfill of N concurrent workers (BENCH_WORKERS, default 4) in aircraftd and as Lambda runs it (the worker under the emulator) against one POST /process-s3-data, same generated data: MB/s, obs/s per worker and in total, CPU of the processes it started, CPU-s/GB vs the pure decode's, a year on paper
	@data=$$(mktemp -d) && trap 'rm -rf "$$data"' EXIT && \
	go -C bench run ./cmd/bench-ingest -generate "$$data" $(BENCH_ARGS) && \
	$(DEVSTACK) exec -- go -C bench run ./cmd/bench-backfill -data "$$data" -workers $(or $(BENCH_WORKERS),4)

.PHONY: bench-download
bench-download: devstack ## lane downloads 200 x 1 MiB and 1 x 1 GiB: the engine alone, then the service vs s5cmd v2.3.0: MB/s, ratios, peak RSS (BENCH_RUNS runs, default 5; BENCH_ARGS="-metrics-off", BENCH_BEFORE as bench-ingest)
	@$(DEVSTACK) exec -- go -C app test -run '^$$' -bench '^BenchmarkEngine$$' -benchtime $(BENCH_RUNS)x -timeout 30m ./internal/download
	@$(DEVSTACK) exec -- go -C bench run ./cmd/bench-download -runs $(BENCH_RUNS) $(BENCH_ARGS) $(if $(BENCH_BEFORE),-before $(BENCH_BEFORE))
