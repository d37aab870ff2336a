# parapet — the two commands a newcomer needs:
#   go run ./cmd/parapet demo      (or: go run ./cmd/parapet run)
#   make test
#
# `make test` installs the real SIP peers the interop tests drive (baresip,
# SIPp, tshark/dumpcap; poppler-utils to look at the PDF reports; SIPVicious to scan it) when they are missing, then runs every test. The
# interop tests fail — they do not skip — when a peer is missing; only
# `go test -short ./...` leaves them out on purpose.

GO        ?= go
PEERS     := baresip linphonec sipp tshark dumpcap socat pdftoppm pdftotext svmap svwar
APT_PKGS  := baresip-core linphone-cli sip-tester tshark socat poppler-utils sipvicious ca-certificates
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: test test-short peers vet lint build bench fuzz clean

test: peers vet lint
	$(GO) test -race -count=1 ./...

test-short: vet
	$(GO) test -short -count=1 ./...

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# golangci-lint, pinned in internal/tools/lint/go.mod (a tool-only module:
# its dependencies stay out of parapet's go.mod). The first run downloads it
# through the Go module proxy; later runs use the module cache, offline.
# Which linters run, and why, is in .golangci.yml.
GOLANGCI_LINT ?= $(GO) tool -modfile=internal/tools/lint/go.mod golangci-lint
lint:
	$(GOLANGCI_LINT) run ./...

# Install the interop peers when any is missing (Debian/Ubuntu, as root or via sudo).
peers:
	@missing=""; for t in $(PEERS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "installing test peers (missing:$$missing)"; \
	SUDO=""; if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
	command -v apt-get >/dev/null 2>&1 || { echo "cannot install$$missing: no apt-get; install baresip, linphonec, sipp, tshark, socat, poppler-utils, sipvicious by hand" >&2; exit 1; }; \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PKGS)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/parapet ./cmd/parapet

bench:
	$(GO) test -run '^$$' -bench '^Benchmark(Pion|Relay)' -benchmem -count 5 -cpu 1 ./bench/
	$(GO) test -run '^$$' -bench 'Loopback' -benchmem -count 5 -cpu 1,2 -benchtime 20000x ./bench/
	$(GO) test -run '^$$' -bench 'DTLSHandshake' -benchmem -count 5 -cpu 1,2 -benchtime 200x ./bench/
	$(GO) test -run '^$$' -bench 'CallSetupTeardown|Fsync' -benchmem -count 5 -benchtime 200x ./bench/

# A run of every fuzz target, one at a time (the machine has 2 cores).
FUZZ_PKGS := ./media ./configs ./compliance ./b2bua
FUZZTIME  ?= 20s
fuzz:
	@for p in $(FUZZ_PKGS); do \
		for t in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
			echo "== $$p $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s -parallel 1 $$p || exit 1; \
		done; \
	done

clean:
	rm -rf bin
