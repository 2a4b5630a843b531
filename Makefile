# otrdesk — the two commands of the quick start are `make demo` and `make test`.
#
#   make deps    install the Debian packages the tests and the demo use (once)
#   make build   widget assets (npm + esbuild + Go wasm) and ./otrdesk with them embedded
#   make demo    a private Prosody on loopback, otrdesk, a demo skin and a demo operator
#   make test    deps, build, vet, and every test (real Prosody, ejabberd, libotr, Chromium)
#   make bench   the benchmarks whose numbers go in issue notes (not run in CI)
#   make fuzz    every fuzz target for FUZZTIME each, then a table (not run in CI)

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# What the tests and the demo need, as "test:package" pairs: a command (or a
# file) that must exist, and the Debian package that provides it. Checking
# what is needed, not package names, keeps a Node.js that came with its own
# npm (it conflicts with Debian's npm package) as it is.
NEEDS    := prosody:prosody /usr/sbin/ejabberdctl:ejabberd /usr/include/libotr/proto.h:libotr5-dev \
            otr_parse:libotr5-bin chromium:chromium node:nodejs npm:npm gcc:gcc pkg-config:pkg-config \
            /usr/lib/python3/dist-packages/axolotl/sessioncipher.py:python3-axolotl \
            /usr/lib/python3/dist-packages/oldmemo/__init__.py:python3-oldmemo \
            /usr/lib/python3/dist-packages/xmlschema/__init__.py:python3-xmlschema \
            profanity:profanity tmux:tmux
# Tests start real servers; one package at a time keeps them from fighting
# over two cores. The timeout is the whole run's bound, well under CI's.
TESTFLAGS ?= -race -count=1 -p 1 -timeout 25m

.PHONY: all deps build widget demo test bench fuzz clean

all: build

deps:
	@missing=""; for need in $(NEEDS); do t=$${need%%:*}; p=$${need#*:}; \
		case $$t in /*) [ -e $$t ] ;; *) command -v $$t >/dev/null 2>&1 ;; esac || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
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
	cd web && node --test test/
	$(GO) test $(TESTFLAGS) ./...

# The widget's benchmark (web/bench_browser_test.go) also measures the widget
# of WIDGET_BASE, built from that commit in a temporary worktree, in the same
# run: by default the commit before the start-up work; empty skips it.
WIDGET_BASE ?= 313162b
WIDGET_RUNS ?= 20
bench: deps build
	$(GO) run ./internal/bench
	$(GO) run ./internal/loadbench
	$(GO) test -run '^$$' -bench . ./omemo/
	cd web && OTRDESK_BENCH_BASE=$(WIDGET_BASE) $(GO) test -run '^$$' -bench BenchmarkWidget -benchtime $(WIDGET_RUNS)x -timeout 60m .

# FUZZTIME is per target: a duration (1m, 10m) or a count of executions (10000x).
FUZZTIME ?= 1m
fuzz:
	$(GO) run ./internal/fuzzall -fuzztime $(FUZZTIME)

clean:
	rm -f otrdesk
	find web/dist -mindepth 1 ! -name README.txt -delete
