#!/usr/bin/env bash
# Installs what is missing to run and test the chat backend on a Debian or
# Ubuntu machine; prints nothing when everything is already there.
#
#   infra/setup.sh          the local stack and the tests: PostgreSQL server
#                           binaries, build tools, postrust (PostgREST), SAM CLI,
#                           Chromium (browser tests), the npm workspaces' packages
#   infra/setup.sh deploy   also cargo-lambda and Zig, for `sam build`
#
# Safe to run any number of times. Uses sudo only when not root.
set -euo pipefail

readonly POSTRUST_VERSION=3.1.0
# postrust-server's own lockfile, but for one entry: it names webpki-roots
# 1.0.11, which the registry does not carry, so `cargo install --locked
# postrust-server` fails. This one has 1.0.10 there (what a fresh resolution
# picks); every install builds the same versions from it.
readonly POSTRUST_LOCKFILE=infra/postrust.Cargo.lock
readonly SAM_CLI_VERSION=1.170.0
readonly CARGO_LAMBDA_VERSION=1.9.2
readonly ZIGLANG_VERSION=0.13.0.post1

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly VENV=.venv

say() { printf 'setup: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    fail "need root to run: $* (and sudo is not installed)"
  fi
}

# --- OS packages -------------------------------------------------------------

apt_updated=false
apt_install() {
  command -v apt-get >/dev/null \
    || fail "missing $*: install them with your package manager (only apt is automated)"
  if [ "$apt_updated" = false ]; then
    say "updating the package lists"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=true
  fi
  say "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_postgres_server() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null
}

have_pg_stat_statements() {
  compgen -G '/usr/lib/postgresql/*/lib/pg_stat_statements.so' >/dev/null
}

install_postgres() {
  # The stack runs its own private cluster; keep Debian from also creating
  # and starting a system-wide one (postgresql-common's documented switch).
  apt_install postgresql-common
  local conf=/etc/postgresql-common/createcluster.conf
  if [ -f "$conf" ] && ! grep -q '^create_main_cluster = false' "$conf"; then
    as_root sed -i -E 's/^#?[[:space:]]*create_main_cluster.*/create_main_cluster = false/' "$conf"
  fi
  apt_install postgresql postgresql-contrib
}

ensure_os_packages() {
  local missing=()
  command -v cc >/dev/null && command -v make >/dev/null || missing+=(build-essential)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v curl >/dev/null || missing+=(curl)
  command -v python3 >/dev/null || missing+=(python3)
  # The browser tests drive Debian's Chromium (playwright-core cannot download one here).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  if [ ! -x "$VENV/bin/python" ] && command -v python3 >/dev/null \
      && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
  if ! have_postgres_server; then
    install_postgres
  elif ! have_pg_stat_statements && [ -d /usr/lib/postgresql ]; then
    apt_install postgresql-contrib
  fi
}

# --- Rust tools --------------------------------------------------------------

ensure_cargo() {
  if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null \
    || fail "Rust is not installed: see https://rustup.rs, then run this again"
}

# Lists are read whole before searching: with pipefail, `grep -q` quitting
# early could fail the producer and read as "not installed".
cargo_installed() { # crate version
  local installed
  installed="$(cargo install --list)"
  # A path install is listed as `name vX (path):`.
  grep -qE "^$1 v$2( \(.*\))?:" <<<"$installed"
}

# The published source of postrust-server, built with our lockfile: cargo
# fetches it as the dependency of a throwaway package resolved from that
# lockfile (so only the locked versions are downloaded), and installs a copy
# with the lockfile beside it.
ensure_postrust() {
  cargo_installed postrust-server "$POSTRUST_VERSION" && return
  say "installing postrust $POSTRUST_VERSION (PostgREST server; several minutes the first time)"
  local work manifest
  work="$(mktemp -d)"
  mkdir -p "$work/fetch/src"
  printf '[package]\nname = "postrust-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\npostrust-server = "=%s"\n\n[workspace]\n' \
    "$POSTRUST_VERSION" >"$work/fetch/Cargo.toml"
  : >"$work/fetch/src/lib.rs"
  cp "$POSTRUST_LOCKFILE" "$work/fetch/Cargo.lock"
  manifest="$(cargo metadata --quiet --format-version 1 --manifest-path "$work/fetch/Cargo.toml" \
    | grep -oE '"manifest_path":"[^"]*/postrust-server-[0-9.]+/Cargo.toml"' | cut -d'"' -f4)"
  [ -n "$manifest" ] || fail "cargo did not fetch postrust-server $POSTRUST_VERSION"
  cp -R "$(dirname "$manifest")" "$work/postrust-server"
  cp "$POSTRUST_LOCKFILE" "$work/postrust-server/Cargo.lock"
  cargo install --quiet --locked --path "$work/postrust-server"
  rm -rf "$work"
}

# Lambda runs the functions on arm64 (Graviton). cargo-lambda would add the
# target itself, but `sam build` runs several builds at once and they race.
ensure_arm64_target() {
  command -v rustup >/dev/null || return 0
  local targets
  targets="$(rustup target list --installed)"
  grep -qx aarch64-unknown-linux-gnu <<<"$targets" && return
  say "adding the Rust target aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu
}

ensure_cargo_lambda() {
  cargo_installed cargo-lambda "$CARGO_LAMBDA_VERSION" && return
  say "installing cargo-lambda $CARGO_LAMBDA_VERSION (about 10 minutes on 2 cores)"
  cargo install --quiet --locked cargo-lambda --version "$CARGO_LAMBDA_VERSION"
}

# --- Python tools, in the project's venv -------------------------------------

ensure_venv() {
  [ -x "$VENV/bin/python" ] && return
  say "creating the Python virtualenv $VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    say "python3 -m venv is unavailable; using virtualenv"
    python3 -m pip install --quiet --user virtualenv
    python3 -m virtualenv --quiet "$VENV"
  fi
}

pip_installed() { # distribution version
  # The dist-info directory says it without starting pip (which takes a second).
  compgen -G "$VENV/lib/python3*/site-packages/${1//-/_}-$2.dist-info" >/dev/null
}

pip_install() { # distribution version
  pip_installed "$1" "$2" && return
  say "installing $1 $2 into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$1==$2"
}

# --- Node.js packages (client, demo, browser tests) ---------------------------

# Exactly what package-lock.json names, reinstalled when the lockfile is newer
# than the last install (npm records each install in node_modules/.package-lock.json).
ensure_node_modules() {
  command -v npm >/dev/null \
    || fail "Node.js (20.19 or later, with npm) is not installed: the client, the demo and the browser tests need it"
  [ node_modules/.package-lock.json -nt package-lock.json ] && return
  say "installing the npm packages of package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
}

# --- main --------------------------------------------------------------------

main() {
  local with_deploy_tools=false
  case "${1:-}" in
    "") ;;
    deploy) with_deploy_tools=true ;;
    *) fail "usage: $0 [deploy]" ;;
  esac

  ensure_os_packages
  ensure_cargo
  ensure_postrust
  ensure_venv
  pip_install aws-sam-cli "$SAM_CLI_VERSION"
  ensure_node_modules
  if [ "$with_deploy_tools" = true ]; then
    ensure_cargo_lambda
    ensure_arm64_target
    # cargo-lambda cross-compiles to arm64 with Zig, found on PATH (.venv/bin).
    pip_install ziglang "$ZIGLANG_VERSION"
  fi
}

main "$@"
