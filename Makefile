# Thin convenience over plain go commands. Everything here works with `go` alone.
GO        ?= go
BIN       ?= bin
CA_DIR    ?= testdata/certs
RUN_ARGS  ?= --ca $(CA_DIR) --device demo-device
FUZZTIME  ?= 10s
PKGS      := ./...

.PHONY: all build test vet lint fmt run certs fuzz bench bench-compare bench-fleet cover tidy clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## test: vet + the whole suite under the race detector (what CI runs)
test: vet
	$(GO) test -race -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: vet

fmt:
	gofmt -w $$(git ls-files '*.go')

## run: a fake IoT Hub on :8883 (TLS, CA in testdata/certs) with one demo device
run:
	$(GO) run ./cmd/fakehub $(RUN_ARGS)

## certs: (re)create the committed test CA in testdata/certs (pure Go)
certs:
	$(GO) run ./internal/certs/cmd/mkca -dir $(CA_DIR) -force

## fuzz: run every Fuzz target for $(FUZZTIME) each
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

## bench: benchmarks (report ratios, not absolute times)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...

## bench-compare: fakehub vs bare mochi vs Mosquitto, same load, interleaved rounds (minutes; not in test)
bench-compare:
	./scripts/bench-compare $(BENCH_ARGS)

## bench-fleet: 19,000 TLS devices on one fakehub, one message each per 10 s (minutes; not in test)
bench-fleet:
	./scripts/bench-compare -fleet 19000 $(BENCH_ARGS)

cover:
	$(GO) test -coverprofile=coverage.out $(PKGS)

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN) coverage.out
