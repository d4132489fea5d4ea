# SOS kernel. `make demo` runs a local node with transfers; `make test` runs every test.
GO          ?= go
BIN         := bin/sos
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Packages whose tests run in `make test`.
PKGS        := ./...

.PHONY: all build test test-short demo bench bench-cluster lint contracts fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/sos

# contracts builds every example contract, policy and job to .wasm (needed by
# the contract tests, the jobs' Wasm tests and the demo).
contracts:
	@if [ -x sdk-contracts/build.sh ]; then sdk-contracts/build.sh; else echo "no contracts to build yet"; fi

test: contracts
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

demo: build contracts
	./scripts/demo.sh

# bench runs the Go benchmarks whose figures BENCHMARKS.md records.
bench: build contracts
	$(GO) test -run='^$$' -bench=. -benchtime=3x -timeout 30m ./kernel/ ./ledger/... ./vm/...

# bench-cluster measures a 3-node devnet under load through the CLI
# (RUNS, TXS, WHO=leader|follower, EXTRA='--rate 1000'; see the script).
bench-cluster: build
	./scripts/bench-cluster.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# fuzz runs every fuzz target in the repository briefly (longer runs:
# FUZZTIME=10m make fuzz). Their seed corpora also run in every 'make test'.
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$pkg/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
