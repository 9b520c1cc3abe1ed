# Everyday commands. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV := .venv
SAM := $(VENV)/bin/sam
REGION := us-east-1

# One debug build for every target here, so `make test`, `make dev`,
# `make token` and `make db-push` share their artifacts. Cargo enables the
# features that dev-dependencies ask for (tokio's test-util, from the chat
# crate's tests) only when a build includes a test or an example; a build of
# the binaries alone would recompile tokio and the ~30 crates above it.
# `--examples` asks for the test feature set without building the tests.
BUILD := cargo build --workspace --bins --examples
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
CHAT_LOCAL := $(TARGET_DIR)/debug/chat-local

# SAM CLI would otherwise phone home on every run; `make test` stays offline.
export SAM_CLI_TELEMETRY := 0

# `make token USER=bob`. USER is also the login name in the environment, so
# only a value given on the command line counts.
TOKEN_USER := $(if $(filter command line,$(origin USER)),$(USER),alice)

.PHONY: help setup setup-deploy dev test test-unit bench token db-push build deploy clean distclean

help:
	@echo "make setup         install what is missing (PostgreSQL, postrust, SAM CLI, Chromium, npm packages)"
	@echo "make dev           run the whole stack locally, with the demo app and the API reference, until Ctrl-C"
	@echo "make test          lint the template, then unit, SQL, end-to-end, client and browser tests"
	@echo "make test-unit     the unit tests alone, in seconds: no database, no stack"
	@echo "make bench         latency, throughput, round trips, cold starts on release builds (BENCH_FLAGS=--help)"
	@echo "                   BENCH_FLAGS=--chaos: the same clients under injected faults lose nothing"
	@echo "make token USER=x  an access token for alice, bob, carol, dave or a user id"
	@echo "make build         sam build (cargo-lambda, arm64, no Docker)"
	@echo "make db-push       apply sql/migrations to the Supabase database at DATABASE_URL"
	@echo "make deploy        db-push when DATABASE_URL is set, then sam deploy (guided the first time)"
	@echo "make clean         remove build outputs; distclean also the dev database and .venv"

setup:
	@infra/setup.sh

setup-deploy:
	@infra/setup.sh deploy

# The demo app and the API reference (demo/, Vite's dev server) run beside
# the stack and stop with it; their URLs follow the stack's banner, printed
# once the stack has written its ready file.
DEMO_PORT ?= 5173
DEMO_URL := http://127.0.0.1:$(DEMO_PORT)
DEV_READY := .local/ready.json

dev: setup
	$(BUILD)
	npm run --silent build -w client
	@rm -f $(DEV_READY)
	@(cd demo && CHAT_READY_FILE=$(CURDIR)/$(DEV_READY) exec node ../node_modules/vite/bin/vite.js --port $(DEMO_PORT) --logLevel warn) & demo=$$!; \
	  (until [ -f $(DEV_READY) ]; do sleep 0.5; done; \
	   printf '  Demo app      %s/\n  API reference %s/api.html\n\n' "$(DEMO_URL)" "$(DEMO_URL)") & urls=$$!; \
	  trap 'kill $$demo $$urls 2>/dev/null || true' EXIT; \
	  $(CHAT_LOCAL) up --ready-file $(DEV_READY)

# The end-to-end tests mostly wait on sockets, so they run in more threads
# than there are cores; they share one stack, each test with its own users.
# The churn tests load stacks of their own with injected faults and a
# load generator: they run after the others, one at a time, so that the
# machine's two cores are not what they measure.
E2E_THREADS ?= 8

# The end-to-end tests start their own ephemeral stack and stop it whatever
# happens; nothing is left running after a failure.
test: setup
	$(SAM) validate --lint --template template.yaml --region $(REGION)
	$(BUILD) --tests
	@status=0; \
	  cargo test --workspace --exclude chat-e2e --no-fail-fast || status=$$?; \
	  cargo test -p chat-e2e --test api --no-fail-fast -- --skip churn:: --test-threads=$(E2E_THREADS) || status=$$?; \
	  cargo test -p chat-e2e --test api --no-fail-fast -- churn:: --test-threads=1 || status=$$?; \
	  npm run --silent build -w client -w demo || status=$$?; \
	  npm test --silent -w client || status=$$?; \
	  npm test --silent -w tests/browser || status=$$?; \
	  exit $$status

# The tests beside the code (src/), in seconds: no database, no stack, no
# function processes, nothing to install first. Not the end-to-end suite
# (chat-e2e), nor the integration tests in each crate's tests/ (the
# emulator's run the echo function as processes, some 15 s; local-stack's
# starts a stack).
test-unit:
	cargo test --workspace --exclude chat-e2e --lib --bins

# Release binaries (stripped, as deployed) on an isolated stack with free
# ports; the figures go to bench/results/. Flags: `make bench BENCH_FLAGS="--duration 30"`.
# chat-bench runs as built here: `cargo run -p chat-bench` would resolve
# features for that package alone and compile some 45 crates a second time.
bench: setup
	cargo build --release --workspace --bins
	$(TARGET_DIR)/release/chat-bench $(BENCH_FLAGS)

token:
	@$(BUILD) --quiet
	@$(CHAT_LOCAL) token $(TOKEN_USER)

# Applies the migrations not yet recorded in the database at DATABASE_URL
# (a Supabase project's direct or session-pooler connection string) and
# records them where the Supabase CLI does, so `supabase db push` and this
# agree. Nothing else: no local bootstrap, no seed. Safe to run again.
db-push:
	@[ -n "$${DATABASE_URL:-}" ] || { echo "make db-push: set DATABASE_URL to the project's Postgres connection string" >&2; exit 2; }
	@$(BUILD) --quiet
	$(CHAT_LOCAL) db-push

# One cargo-lambda build for every function: they all run the one executable
# (chat-functions) with their own Handler, and SAM builds functions that
# share their code and build settings once. cargo-lambda finds Zig through
# the venv's python (pip package ziglang).
build: setup-deploy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SAM) build

# The database first: the functions being replaced keep working on the new
# schema, the new functions would not on the old one. Without DATABASE_URL
# only the functions are deployed, and it says so.
# Secrets never go in samconfig.toml: they come from SUPABASE_ANON_KEY,
# SUPABASE_SERVICE_ROLE_KEY and SUPABASE_JWT_SECRET (with SUPABASE_URL) when
# set, else `sam deploy --guided` asks (it does not save NoEcho values), as it
# does whenever samconfig.toml still holds the placeholder project URL.
deploy: build
	@if [ -n "$${DATABASE_URL:-}" ]; then \
	  $(MAKE) db-push; \
	else \
	  echo "make deploy: DATABASE_URL is not set, so the database is left as it is (make db-push applies sql/migrations)"; \
	fi
	@if [ -n "$${SUPABASE_URL:-}" ] && [ -n "$${SUPABASE_ANON_KEY:-}" ] && [ -n "$${SUPABASE_SERVICE_ROLE_KEY:-}" ]; then \
	  overrides=("SupabaseUrl=$$SUPABASE_URL" "SupabaseAnonKey=$$SUPABASE_ANON_KEY" \
	             "SupabaseServiceRoleKey=$$SUPABASE_SERVICE_ROLE_KEY"); \
	  [ -z "$${SUPABASE_JWT_SECRET:-}" ] || overrides+=("SupabaseJwtSecret=$$SUPABASE_JWT_SECRET"); \
	  [ -z "$${SUPABASE_JWT_ISSUER:-}" ] || overrides+=("SupabaseJwtIssuer=$$SUPABASE_JWT_ISSUER"); \
	  echo "$(SAM) deploy --parameter-overrides <from the SUPABASE_* environment variables>"; \
	  $(SAM) deploy --parameter-overrides "$${overrides[@]}"; \
	elif grep -q 'YOUR-PROJECT-REF' samconfig.toml; then \
	  echo "$(SAM) deploy --guided"; \
	  $(SAM) deploy --guided; \
	else \
	  echo "$(SAM) deploy"; \
	  $(SAM) deploy; \
	fi

clean:
	cargo clean
	rm -rf .aws-sam

# Also the dev stack's state (its database and secrets) and the tools venv.
distclean: clean
	rm -rf .local $(VENV)
