# Everyday commands. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV := .venv
SAM := $(VENV)/bin/sam
REGION := us-east-1
CHAT_LOCAL := cargo run --quiet -p local-stack --bin chat-local --

# SAM CLI would otherwise phone home on every run; `make test` stays offline.
export SAM_CLI_TELEMETRY := 0

# `make token USER=bob`. USER is also the login name in the environment, so
# only a value given on the command line counts.
TOKEN_USER := $(if $(filter command line,$(origin USER)),$(USER),alice)

.PHONY: help setup setup-deploy dev test bench token build deploy clean distclean

help:
	@echo "make setup         install what is missing (PostgreSQL, postrust, SAM CLI)"
	@echo "make dev           run the whole stack locally until Ctrl-C"
	@echo "make test          lint the template, then unit, SQL and end-to-end tests"
	@echo "make bench         latency, throughput, round trips, cold starts on release builds (BENCH_FLAGS=--help)"
	@echo "make token USER=x  an access token for alice, bob, carol, dave or a user id"
	@echo "make build         sam build (cargo-lambda, arm64, no Docker)"
	@echo "make deploy        sam deploy (guided the first time)"
	@echo "make clean         remove build outputs; distclean also the dev database and .venv"

setup:
	@infra/setup.sh

setup-deploy:
	@infra/setup.sh deploy

dev: setup
	cargo build --workspace --bins
	$(CHAT_LOCAL) up

# The end-to-end tests start their own ephemeral stack and stop it whatever
# happens; nothing is left running after a failure.
test: setup
	$(SAM) validate --lint --template template.yaml --region $(REGION)
	cargo build --workspace --bins --tests
	cargo test --workspace --no-fail-fast

# Release binaries (stripped, as deployed) on an isolated stack with free
# ports; the figures go to bench/results/. Flags: `make bench BENCH_FLAGS="--duration 30"`.
bench: setup
	cargo build --release --workspace --bins
	cargo run --quiet --release -p chat-bench -- $(BENCH_FLAGS)

token:
	@$(CHAT_LOCAL) token $(TOKEN_USER)

# cargo-lambda finds Zig through the venv's python (pip package ziglang).
build: setup-deploy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SAM) build

# Secrets never go in samconfig.toml: they come from SUPABASE_ANON_KEY,
# SUPABASE_SERVICE_ROLE_KEY and SUPABASE_JWT_SECRET (with SUPABASE_URL) when
# set, else `sam deploy --guided` asks (it does not save NoEcho values), as it
# does whenever samconfig.toml still holds the placeholder project URL.
deploy: build
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
