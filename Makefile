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

# cmd/gantry runs alone, after the other packages: its end-to-end tests,
# several at once, keep a 2-core machine busy by themselves, and beside
# queue and server (mostly one test at a time each) every package ran 3-4x
# slower, past what their leases and waits allow: three CI runs failed so.
E2E     := github.com/gantry-dev/gantry/cmd/gantry

.PHONY: test
test: ## Run every test, unit and integration (embedded NATS, real Docker), with the race detector
	@test -n "$(RACE)" || echo "make test: cgo is off (no C compiler found), so the tests run without the race detector"
	@pkgs=$$($(GO) list $(PKGS)) || exit 1; \
	rest=$$(echo "$$pkgs" | grep -vx '$(E2E)'); e2e=$$(echo "$$pkgs" | grep -x '$(E2E)'); rc=0; \
	if [ -n "$$rest" ]; then echo "$(GO) test $(RACE) -count=1 -timeout 20m <every package but cmd/gantry>"; \
	  $(GO) test $(RACE) -count=1 -timeout 20m $$rest || rc=1; fi; \
	if [ -n "$$e2e" ]; then echo "$(GO) test $(RACE) -count=1 -timeout 20m ./cmd/gantry"; \
	  $(GO) test $(RACE) -count=1 -timeout 20m $$e2e || rc=1; fi; \
	exit $$rc

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
