# Hallmark developer commands. `make run` and `make test` are the two documented entry points.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test setup fmt lint build release

setup:
	@scripts/fetch-onnxruntime.sh
	@scripts/fetch-models.sh

build: setup
	$(CARGO) build --bins

# Runs the service on the embedded default: SQLite file + in-process cache + generated dev
# signing certificate, all under ./data.
run: setup
	$(CARGO) run --bin hallmark -- serve

# Runs every test. Postgres/Redis tests use HALLMARK_TEST_PG_URL / HALLMARK_TEST_REDIS_URL
# (defaults: postgres://postgres@127.0.0.1:5432/postgres, redis://127.0.0.1:6379).
test: setup
	$(CARGO) build --bins
	$(CARGO) test --workspace --no-fail-fast
	scripts/interop/run.sh

fmt:
	$(CARGO) fmt --all --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
