# gridcap — the two commands: `make run` (a single node serving the browser
# client on :8080) and `make test` (everything, installing what is missing).

CARGO ?= cargo
WEB := web-client
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/index.html $(WEB)/admin.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json $(WEB)/package-lock.json -type f 2>/dev/null)

.PHONY: run test test-rust test-web test-e2e lint fmt fmt-check clippy bench web deps clean help cluster-stateful cluster-stateless fuzz

help:
	@echo "make run    build the browser client if needed, then serve a single node on :8080"
	@echo "make test   fmt check, clippy -D warnings, every Rust test, the web unit and browser tests"
	@echo "make bench  the benchmarks behind docs/benchmarks.md (minutes; loopback only)"
	@echo "make lint   fmt check + clippy;  make fmt   format the code;  make web   build the client"
	@echo "make cluster-stateful   3 stateful nodes behind HAProxy on loopback (Ctrl-C stops them)"
	@echo "make cluster-stateless  Redis, 2 stateless nodes and HAProxy on loopback"
	@echo "make fuzz   each cargo-fuzz target for FUZZ_TIME seconds (default 60); the corpus replay is in make test"

## The main command: one node, games in memory, no external service.
run: web
	$(CARGO) run --release -p gridcap-server -- serve $(ARGS)

## A playable 3-node stateful cluster behind HAProxy on loopback.
cluster-stateful: web
	$(CARGO) build --release -p gridcap-server
	deploy/local/cluster-stateful.sh

## A stateless cluster on loopback: Redis, 2 nodes and HAProxy.
cluster-stateless: web
	$(CARGO) build --release -p gridcap-server
	deploy/local/cluster-stateless.sh

## Build the browser client when it is missing or older than its sources.
web: $(WEB)/dist/index.html

$(WEB)/dist/index.html: $(WEB_SOURCES)
	scripts/ensure-deps.sh web
	cd $(WEB) && npm run build

deps:
	scripts/ensure-deps.sh all

## The test command.
test: deps fmt-check clippy test-rust test-web test-e2e
	@echo "make test: all passed"

# Tests that need redis-server, haproxy, nginx, strace, prometheus or promtool fail
# (not skip) when they are missing: `make test` installs them first. The soft
# limit on open files goes up to the hard one: load.rs holds ~2,000 descriptors
# (it plays fewer games when it may not).
test-rust: export GRIDCAP_REQUIRE_SYSTEM_DEPS = 1
test-rust:
	$(CARGO) build -p gridcap-server
	ulimit -Sn "$$(ulimit -Hn)" 2>/dev/null; $(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

test-web:
	cd $(WEB) && npm run typecheck && npm test

test-e2e: web
	$(CARGO) build -p gridcap-server
	$(CARGO) build -p gridcap-testkit --example make-cert
	cd $(WEB) && GRIDCAP_BIN=$(CURDIR)/target/debug/gridcap \
		GRIDCAP_MAKE_CERT=$(CURDIR)/target/debug/examples/make-cert npm run test:e2e

lint: fmt-check clippy

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench:
	taskset -c 1 $(CARGO) bench -p gridcap-game-logic --bench captures
	@if [ -x scripts/bench/all.sh ]; then scripts/bench/all.sh; fi
	@for f in target/bench/fanout.md target/bench/callgrind.txt target/bench/versus.md; do \
		if [ -f $$f ]; then echo "== $$f"; cat $$f; fi; done

## Each fuzz target for FUZZ_TIME seconds (installs cargo-fuzz if missing).
fuzz:
	scripts/fuzz.sh $(or $(FUZZ_TIME),60)

clean:
	$(CARGO) clean
	rm -rf $(WEB)/dist fuzz/target fuzz/artifacts
