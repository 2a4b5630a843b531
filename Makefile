# otrdesk — the two commands of the quick start are `make demo` and `make test`.
#
#   make deps    install the Debian packages the tests and the demo use (once)
#   make build   widget assets (npm + esbuild + Go wasm) and ./otrdesk with them embedded
#   make demo    a private Prosody on loopback, otrdesk, a demo skin and a demo operator
#   make test    deps, build, vet, and every test (real Prosody, ejabberd, libotr, Chromium)
#   make bench   the benchmarks whose numbers go in issue notes (not run in CI)

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -s -w -X main.version=$(VERSION)
DEBS     := prosody ejabberd libotr5-dev libotr5-bin chromium nodejs npm gcc pkg-config
# Tests start real servers; one package at a time keeps them from fighting
# over two cores. The timeout is the whole run's bound, well under CI's.
TESTFLAGS ?= -race -p 1 -timeout 25m

.PHONY: all deps build widget demo test bench clean

all: build

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 $$missing; \
	fi
	@# Installing prosody/ejabberd starts system daemons on the default ports;
	@# nothing here uses them, and the demo and tests pick free ports.

widget:
	cd web && npm ci --no-audit --no-fund && node build.mjs

build: widget
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o otrdesk ./cmd/otrdesk

demo: deps build
	$(GO) run ./internal/demo -otrdesk ./otrdesk

test: deps build
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

bench: deps build
	$(GO) run ./internal/bench

clean:
	rm -f otrdesk
	find web/dist -mindepth 1 ! -name README.txt -delete
