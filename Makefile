# Gantry's tasks. `make help` lists them.
GO      ?= go
BIN     := bin/gantry
PKGS    := ./...
# The race detector needs cgo, which Go turns off when it finds no C
# compiler: there the tests run without it (make test says so).
RACE    ?= $(if $(filter 1,$(shell $(GO) env CGO_ENABLED 2>/dev/null)),-race)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/gantry
	$(GO) build -trimpath -o $(BIN) ./cmd/gantry

.PHONY: images
images: ## Build the local sample image gantry/samples:latest (no registry needed)
	$(GO) run ./samples/cmd/gantry-images

# -p 1: one package's tests at a time. The integration-heavy packages
# (cmd/gantry, queue, server) each keep a 2-core machine busy on their own;
# side by side they slowed each other 3-4x, past the timings their
# leases and waits allow, and took as long in all.
.PHONY: test
test: ## Run every test, unit and integration (embedded NATS, real Docker), with the race detector
	@test -n "$(RACE)" || echo "make test: cgo is off (no C compiler found), so the tests run without the race detector"
	$(GO) test $(RACE) -p 1 -count=1 -timeout 20m $(PKGS)

.PHONY: chaos
chaos: ## Run the long kill -9 torture tests, nothing lost or doubled and no overlap (three seeds each, 3 s leases; ~35 min)
	GANTRY_CHAOS=long $(GO) test $(RACE) -count=1 -timeout 90m -v -run '^(TestChaosKillNothingLostNothingDoubled|TestChaosKillNoOverlap)$$' ./cmd/gantry

.PHONY: demo
demo: build images ## Start gantry up, run the sample ETL as runs and as a pipeline, show the result
	./samples/demo.sh

.PHONY: bench
bench: build ## Run gantry bench (the full suite, 11–20 min) and write BENCHMARKS.md
	$(BIN) bench --report .

.PHONY: bench-quick
bench-quick: build ## Run gantry bench --quick (a few minutes)
	$(BIN) bench --quick

.PHONY: microbench
microbench: ## Run the Go micro-benchmarks of the hot paths
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)

.PHONY: fuzz
fuzz: ## Run each fuzz test for 20s
	@for p in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$p || exit 1; \
	  done; \
	done

.PHONY: clean
clean: ## Remove bin/
	rm -rf bin
