# aws-spots-booster — the two newcomer commands are `make run` and `make test`.
# Everything they need is installed by the targets themselves and cached outside the
# checkout, under $(CACHE).

CACHE ?= $(HOME)/.cache/aws-spots-booster
# One build per checkout: cargo decides freshness by file times, and bakes the checkout's
# path into what it builds (env!("CARGO_MANIFEST_DIR")), so two checkouts sharing one
# target could each run the other's binaries (seen: a clean checkout elsewhere left test
# binaries that looked for the chart under its own, deleted, path).
CHECKOUT_ID := $(shell printf '%s' '$(CURDIR)' | cksum | cut -d' ' -f1)
export CARGO_TARGET_DIR ?= $(CACHE)/target/$(CHECKOUT_ID)
# Builds start from a clean checkout: incremental state would only take disk.
export CARGO_INCREMENTAL ?= 0
# 2 cores: keep builds and test threads sized for them.
export CARGO_BUILD_JOBS ?= 2
export RUST_TEST_THREADS ?= 2
CARGO ?= cargo
FUZZ_SECONDS ?= 60
PYTHON ?= python3
# moto (AWS emulator) for the booster-aws tests, in a venv under the cache.
MOTO_VERSION ?= 5.2.5
VENV := $(CACHE)/venv
MOTO_STAMP := $(VENV)/.moto-$(MOTO_VERSION)
export MOTO_SERVER := $(VENV)/bin/moto_server

.PHONY: run test e2e docs docs-check cycles-check mdbook toolchain moto servers helm prometheus test-tools rust-build apiserver-requests k8s-memory controller-memory event-flood-memory docker-build docker-push fmt-check clippy unit bench fuzz fmt clean-cache

## run: the main job. With no cluster it runs the embedded simulator: every built-in
## scenario under nth-drain, upstream and the booster's four ways (booster, booster-placeholder,
## booster-standby, booster-adaptive), a table, and an HTML page of charts.
## It builds only the offline commands (no Kubernetes, AWS or metrics code) with the `sim`
## profile (no LTO): about 2 minutes on 2 cores from empty caches.
run: toolchain
	@mkdir -p $(CACHE)
	$(CARGO) run --profile sim --locked -q -p booster-bin --no-default-features -- simulate --html $(CACHE)/simulation.html

## test: format check, clippy with -D warnings, and every test of the workspace: the
## booster-aws suite against a moto server, the booster-k8s suite against a real
## kube-apiserver, etcd and kube-controller-manager (built from their Go modules, cached),
## then the end-to-end scenarios (`make e2e`).
## The tools (moto, the Go builds of the test servers and Helm, Prometheus) are installed
## beside the Rust build of the tests: on 2 cores each fills the other's idle time, which a
## cold run needs (Karpenter's build alone is 19 minutes).
test: toolchain fmt-check
	$(MAKE) -j2 --output-sync=target test-tools rust-build
	$(MAKE) clippy unit docs-check cycles-check e2e

test-tools: moto servers helm prometheus mdbook

rust-build:
	$(CARGO) test --locked --workspace --all-features --no-run
	$(CARGO) test --locked -p booster-bin --no-run

toolchain:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

## moto: moto[server] in a venv under the cache, once per version.
moto: $(MOTO_STAMP)

$(MOTO_STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.9+" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'moto[server]==$(MOTO_VERSION)'
	@touch $@

## servers: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok,
## amazon-ec2-metadata-mock and Karpenter's KWOK provider (with its CRDs) for the tests, built from their Go modules into $(CACHE)/bin
## (minutes the first time, a second once cached).
servers:
	BOOSTER_TEST_SERVERS=$(CACHE)/bin scripts/build-test-servers.sh

## helm: Helm, built from its Go module, to lint and render the chart in the tests.
HELM_VERSION ?= v3.22.0
HELM := $(CACHE)/tools/bin/helm
export BOOSTER_HELM := $(HELM)
helm: $(CACHE)/tools/.helm-$(HELM_VERSION)

$(CACHE)/tools/.helm-$(HELM_VERSION):
	@command -v go >/dev/null || { echo "go not found: install Go 1.24+" >&2; exit 1; }
	mkdir -p $(CACHE)/tools/bin
	GOBIN=$(CACHE)/tools/bin GOFLAGS=-trimpath go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@touch $@

## docs: the reference (docs/) as a book, built with mdBook into $(CACHE)/book.
## docs-check (run by `make test`): the book builds, and no internal link of the README or
## the book is broken (scripts/check-docs.py; prints one line with its figures).
MDBOOK_VERSION ?= 0.4.52
MDBOOK := $(CACHE)/tools/mdbook-$(MDBOOK_VERSION)/bin/mdbook
mdbook: $(MDBOOK)

$(MDBOOK):
	$(CARGO) install --locked --quiet mdbook --version $(MDBOOK_VERSION) --no-default-features \
		--root $(CACHE)/tools/mdbook-$(MDBOOK_VERSION)

docs: $(MDBOOK)
	RUST_LOG=warn $(MDBOOK) build docs --dest-dir $(CACHE)/book
	@echo "book: $(CACHE)/book/index.html"

docs-check: $(MDBOOK)
	$(PYTHON) scripts/check-docs.py
	RUST_LOG=warn $(MDBOOK) build docs --dest-dir $(CACHE)/book-check
	@echo "book: built ($$(ls $(CACHE)/book-check/*.html | wc -l) pages)"

## cycles-check (run by `make test`): no import circles between the modules of any crate.
cycles-check:
	$(PYTHON) scripts/check-cycles.py

## prometheus: Prometheus and promtool 2.42 from Debian's package, downloaded by apt from
## the machine's own package sources (no host name here) and unpacked under the cache once
## per version, for the dashboard and alert checks of the end-to-end suite.
PROMETHEUS_VERSION ?= 2.42.0+ds-5+deb12u1
PROMETHEUS_DIR := $(CACHE)/tools/prometheus-$(PROMETHEUS_VERSION)
export BOOSTER_PROMETHEUS := $(PROMETHEUS_DIR)/usr/bin/prometheus
prometheus: $(PROMETHEUS_DIR)/.unpacked

$(PROMETHEUS_DIR)/.unpacked:
	@command -v apt-get >/dev/null || { echo "apt-get not found: Prometheus comes from Debian's package" >&2; exit 1; }
	mkdir -p $(PROMETHEUS_DIR)
	cd $(PROMETHEUS_DIR) && { apt-get download -q prometheus=$(PROMETHEUS_VERSION) \
		|| { apt-get update -q && apt-get download -q prometheus=$(PROMETHEUS_VERSION); }; }
	dpkg-deb -x $(PROMETHEUS_DIR)/prometheus_*.deb $(PROMETHEUS_DIR)
	rm -f $(PROMETHEUS_DIR)/prometheus_*.deb
	@touch $@

fmt-check:
	$(CARGO) fmt --all -- --check

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --locked --workspace --all-targets --all-features -- -D warnings
	$(CARGO) clippy --locked -p booster-bin --no-default-features -- -D warnings

# BOOSTER_REQUIRE_*: a missing server fails the suite instead of skipping it.
unit: moto servers helm
	BOOSTER_REQUIRE_MOTO=1 BOOSTER_REQUIRE_APISERVER=1 BOOSTER_REQUIRE_HELM=1 BOOSTER_TEST_SERVERS=$(CACHE)/bin \
		$(CARGO) test --locked --workspace --all-features

## e2e: the end-to-end scenarios, in two streams side by side (each starts its own control plane,
## kube-scheduler, kwok, moto and booster processes; about 17 minutes on 2 cores). Each
## prints one line: `e2e <scenario>: ok in <s> s (<figures>)`.
# Two streams side by side: each scenario mostly waits (boots, timeouts, expiries), and
# every world is its own (ports from the kernel, directories and namespaces by pid), so two
# worlds share the machine's two cores without sharing state. Each stream runs its
# scenarios one at a time; --output-sync keeps each stream's lines together.
E2E_ENV = BOOSTER_REQUIRE_MOTO=1 BOOSTER_REQUIRE_APISERVER=1 BOOSTER_REQUIRE_PROMETHEUS=1 BOOSTER_TEST_SERVERS=$(CACHE)/bin
e2e: moto servers prometheus
	$(CARGO) test --locked -p booster-bin --test e2e --test e2e_drain_on --test e2e_faults --test e2e_karpenter --test e2e_surge --no-run
	$(MAKE) -j2 --output-sync=target e2e-main e2e-faults

e2e-main:
	$(E2E_ENV) $(CARGO) test --locked -p booster-bin --test e2e --test e2e_drain_on -- --ignored --test-threads=1 --nocapture

e2e-faults:
	$(E2E_ENV) $(CARGO) test --locked -p booster-bin --test e2e_faults --test e2e_karpenter --test e2e_surge -- --ignored --test-threads=1 --nocapture

## apiserver-requests: the booster's apiserver requests per minute with 5,000 Nodes, idle
## and while three signals are handled, from the apiserver's audit log.
apiserver-requests: moto servers
	BOOSTER_REQUIRE_MOTO=1 BOOSTER_REQUIRE_APISERVER=1 BOOSTER_TEST_SERVERS=$(CACHE)/bin \
		$(CARGO) test --locked -p booster-bin --test requests -- --ignored --nocapture

## k8s-memory: the Kubernetes adapter's memory with 5,000 Nodes in a real apiserver.
k8s-memory: servers
	BOOSTER_REQUIRE_APISERVER=1 BOOSTER_TEST_SERVERS=$(CACHE)/bin \
		$(CARGO) test --locked --release -p booster-tests --test k8s memory_with_5000_nodes -- --ignored --nocapture

## docker-build / docker-push: the image, for PLATFORM (e.g. linux/amd64,linux/arm64) and
## VERSION (default: the workspace version), as IMAGE:VERSION.
IMAGE ?= ghcr.io/aws-spots-booster/aws-spots-booster
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
PLATFORM ?= linux/amd64
docker-build:
	docker buildx build --platform $(PLATFORM) -t $(IMAGE):$(VERSION) --load .

docker-push:
	docker buildx build --platform $(PLATFORM) -t $(IMAGE):$(VERSION) --push .

## controller-memory: the release binary's size and RSS, idle and with 5,000 Nodes.
controller-memory: servers
	BOOSTER_REQUIRE_APISERVER=1 BOOSTER_TEST_SERVERS=$(CACHE)/bin \
		$(CARGO) test --locked --release -p booster-bin --test controller binary_size_and_rss -- --ignored --nocapture

## event-flood-memory: the release binary's RSS while FLOOD_EVENTS RebalanceRecommendation
## Events with FLOOD_BYTES-byte messages arrive, and when it starts after them (make test
## runs the same check at 1,000 x 256 KiB); and with FLOOD_SMALL small Events in a tenant's
## namespace (flat) and in default (bounded; make test: 11,000).
FLOOD_EVENTS ?= 10000
FLOOD_BYTES ?= 1048576
FLOOD_SMALL ?= 200000
event-flood-memory: servers
	BOOSTER_REQUIRE_APISERVER=1 BOOSTER_TEST_SERVERS=$(CACHE)/bin FLOOD_EVENTS=$(FLOOD_EVENTS) FLOOD_BYTES=$(FLOOD_BYTES) FLOOD_SMALL=$(FLOOD_SMALL) \
		$(CARGO) test --locked --release -p booster-bin --test flood -- --nocapture

## bench: criterion benchmarks of the parser, the engine and a simulated storm.
bench:
	$(CARGO) bench --locked -p booster-core --bench core
	$(CARGO) bench --locked -p booster-sim --bench sim

## fuzz: cargo-fuzz on the CA-status parser for FUZZ_SECONDS (not run by CI).
fuzz:
	@test -x $(CACHE)/tools/bin/cargo-fuzz || $(CARGO) install cargo-fuzz --locked --root $(CACHE)/tools
	mkdir -p $(CACHE)/fuzz-corpus
	cd fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(CACHE)/fuzz-target/$(CHECKOUT_ID) $(CACHE)/tools/bin/cargo-fuzz run ca_status \
		$(CACHE)/fuzz-corpus seeds -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096

clean-cache:
	rm -rf $(CACHE)
