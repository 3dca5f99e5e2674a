# Thin convenience over plain go commands. Everything here works with `go` alone.
GO        ?= go
BIN       ?= bin
CA_DIR    ?= testdata/certs
RUN_ARGS  ?= --ca $(CA_DIR) --device demo-device
FUZZTIME  ?= 50000x
# -fuzzminimizetime: the default 60 s per new input stalls targets whose coverage varies with timing
FUZZMINTIME ?= 10x
SOAK      ?= 5m
PKGS      := ./...
# staticcheck, pinned; `go run pkg@version` builds it outside this module's graph (see lint).
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build install test vet lint staticcheck fmt run certs fuzz soak bench bench-compare bench-fleet cover tidy clean image screenshots bench-dashboard

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## install: sastool, fakehub and devicesim into $(go env GOBIN), else $(go env GOPATH)/bin
install:
	$(GO) install ./cmd/...

## test: lint + the whole suite under the race detector (what CI runs)
test: lint
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## lint: go vet, the gofmt check and staticcheck
lint: vet staticcheck

# go run PKG@VERSION, not a go.mod tool directive: a tool directive puts staticcheck's
# requirements (golang.org/x/tools v0.51, x/sync, x/mod, ...) into hubkit's module graph, where
# they would raise the versions every importer of hubkit builds with; go run @version keeps
# them out, needs nothing in PATH, and Go caches the built binary.
staticcheck:
	$(STATICCHECK) $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## run: a fake IoT Hub on :8883 (TLS, CA in testdata/certs) with one demo device
run:
	$(GO) run ./cmd/fakehub $(RUN_ARGS)

## certs: (re)create the committed test CA in testdata/certs (pure Go)
certs:
	$(GO) run ./internal/certs/cmd/mkca -dir $(CA_DIR) -force

## fuzz: run every Fuzz target for $(FUZZTIME) each (executions, e.g. 50000x, or a duration)
# A count is the default: with a duration, Go 1.26 can end a healthy target with "context
# deadline exceeded" (golang/go#75804); such an ending without a failing input counts as a pass.
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; \
	    if $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) $$pkg >$$log 2>&1; then \
	      grep -o 'execs: [0-9]*' $$log | tail -1; \
	    elif ! grep -q 'Failing input written' $$log && grep -q 'context deadline exceeded' $$log; then \
	      grep -o 'execs: [0-9]*' $$log | tail -1; echo "   (ended by -fuzztime: golang/go#75804, no failing input)"; \
	    else cat $$log; exit 1; fi; \
	  done; done

## soak: devices, reconnect storms, token renewal, C2D, twins and methods for $(SOAK)
## (default 5m; SOAK=30m for longer), then every message accounted for
soak:
	$(GO) test -run '^TestSoak$$' -count=1 -timeout 0 -v ./internal/soak -soak $(SOAK)

## bench: benchmarks (report ratios, not absolute times)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...

## bench-compare: fakehub vs bare mochi vs Mosquitto, same load, interleaved rounds (minutes; not in test)
bench-compare:
	./scripts/bench-compare $(BENCH_ARGS)

## bench-fleet: 19,000 TLS devices on one fakehub, one message each per 10 s (minutes; not in test)
bench-fleet:
	./scripts/bench-compare -fleet 19000 $(BENCH_ARGS)

## image: fakehub's OCI image (static binary, empty base) as a tarball, without a Docker daemon
IMAGE     ?= $(BIN)/fakehub-image.tar
IMAGE_TAG ?= hubkit/fakehub:dev
image:
	$(GO) run ./internal/ociimage/cmd/mkimage -o $(IMAGE) -tag $(IMAGE_TAG) \
	  -version "$$(git describe --tags --always --dirty 2>/dev/null || echo dev)" -revision "$$(git rev-parse HEAD 2>/dev/null)"

## screenshots: refresh docs/screenshots (the README's) from a run of the dashboard's browser test
screenshots:
	HUBKIT_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestBrowser' ./pkg/fakehub/internal/dashboard

## bench-dashboard: 10,000 connected devices: dashboard page loads, telemetry throughput with and without live views
bench-dashboard:
	HUBKIT_DASHBOARD_LOAD=10000 $(GO) test -count=1 -timeout 20m -run '^TestDashboardLoad$$' -v ./pkg/fakehub | grep -v '^=== '

cover:
	$(GO) test -coverprofile=coverage.out $(PKGS)

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN) coverage.out
