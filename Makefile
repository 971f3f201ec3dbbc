# Hallmark developer commands. `make run` and `make test` are the two documented entry points.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test setup fmt lint build release install

# `make install PREFIX=DIR`: DIR/bin/hallmark, DIR/share/hallmark (registries + models),
# DIR/lib (ONNX Runtime). PROFILE=dev installs the debug build (faster to build).
PREFIX ?= /usr/local
PROFILE ?= release

setup:
	@scripts/fetch-onnxruntime.sh
	@scripts/fetch-models.sh

build: setup
	$(CARGO) build --bins

# Runs the service on the embedded default: SQLite file + in-process cache + generated dev
# signing certificate, all under the per-user data directory (~/.local/share/hallmark; set
# HALLMARK__STORAGE__DATA_DIR to use another).
run: setup
	$(CARGO) run --bin hallmark -- serve

# Runs every test, then every command block of README.md (scripts/readme-test.sh). Postgres/Redis tests use HALLMARK_TEST_PG_URL / HALLMARK_TEST_REDIS_URL
# (defaults: postgres://postgres@127.0.0.1:5432/postgres, redis://127.0.0.1:6379).
test: setup
	$(CARGO) build --bins
	$(CARGO) test --workspace --no-fail-fast
	scripts/interop/run.sh
	scripts/readme-test.sh

fmt:
	$(CARGO) fmt --all --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Cargo's output directory: CARGO_TARGET_DIR when set (a shared target directory), else ./target.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

install: setup
	$(CARGO) build --profile $(PROFILE) --bin hallmark
	scripts/install.sh --bin $(TARGET_DIR)/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))/hallmark $(PREFIX)
