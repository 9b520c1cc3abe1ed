#!/usr/bin/env bash
# What a change costs to build, from a clean checkout of a commit (default
# HEAD) with an empty target directory:
#
#   release   `cargo build --release -p chat-lambdas --bins`: every function,
#             x86_64, the profile `make bench` measures;
#   sam       `sam build` (arm64 through cargo-lambda and Zig, what
#             `make build` and `make deploy` run), when cargo-lambda is
#             installed (`make setup-deploy`).
#
# The seconds and the stripped sizes of what was built go to
# bench/results/build-<commit>-<time>.json and are printed. The commit is
# cloned, so uncommitted changes are not measured.
#
#   bench/build_times.sh [COMMIT] [--skip-sam]
set -euo pipefail

root="$(git rev-parse --show-toplevel)"
commit="HEAD"
skip_sam=false
for arg in "$@"; do
  case "$arg" in
    --skip-sam) skip_sam=true ;;
    -*) echo "build_times.sh: unknown option $arg" >&2; exit 2 ;;
    *) commit="$arg" ;;
  esac
done
sha="$(git -C "$root" rev-parse --short "$commit")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone --quiet --no-checkout "$root" "$work/src"
git -C "$work/src" checkout --quiet "$sha"
cd "$work/src"

seconds_of() {
  local start end
  start="$(date +%s.%N)"
  "$@" >"$work/last.log" 2>&1 || { tail -30 "$work/last.log" >&2; return 1; }
  end="$(date +%s.%N)"
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }'
}

# Sizes of the distinct executables under a directory, as JSON: {"name": bytes}.
sizes_json() {
  local dir="$1" pattern="$2" first=true
  printf '{'
  while IFS= read -r file; do
    $first || printf ','
    first=false
    printf '"%s":%s' "${file#"$dir"/}" "$(stat -c %s "$file")"
  done < <(find "$dir" -type f -name "$pattern" | sort)
  printf '}'
}

echo "build_times: $sha, clean release build of every function (x86_64)" >&2
release_seconds="$(CARGO_TARGET_DIR="$work/target" seconds_of cargo build --release -p chat-lambdas --bins)"
release_sizes="$(sizes_json "$work/target/release" 'chat-functions')"
if [ "$release_sizes" = '{}' ]; then
  # A layout of one executable per function (an earlier commit).
  release_sizes="$(find "$work/target/release" -maxdepth 1 -type f -executable -newer Cargo.toml \
    -printf '"%f":%s,' | sed 's/,$//; s/^/{/; s/$/}/')"
fi

sam_seconds=null
sam_sizes='[]'
if ! $skip_sam; then
  if command -v cargo-lambda >/dev/null && [ -x "$root/.venv/bin/sam" ]; then
    echo "build_times: sam build (arm64)" >&2
    sam_seconds="$(PATH="$root/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0 CARGO_TARGET_DIR="$work/target-arm64" \
      seconds_of "$root/.venv/bin/sam" build --template template.yaml)"
    # One entry per distinct size: SAM builds functions that share their code once (one "Shared" artifact).
    sam_sizes="$(find .aws-sam/build -type f -name bootstrap -exec stat -c %s {} + | sort | uniq -c |
      awk 'BEGIN { printf "[" } { printf "%s{\"bytes\":%s,\"files\":%s}", (NR > 1 ? "," : ""), $2, $1 }
           END { printf "]" }')"
  else
    echo "build_times: no cargo-lambda or SAM CLI (make setup-deploy installs them): sam build not timed" >&2
  fi
fi

out="$root/bench/results/build-$sha-$(date -u +%Y%m%dT%H%M%SZ).json"
mkdir -p "$(dirname "$out")"
cat >"$out" <<JSON
{
  "commit": "$sha",
  "cores": $(nproc),
  "release_build_seconds": $release_seconds,
  "release_binary_bytes": $release_sizes,
  "sam_build_seconds": $sam_seconds,
  "sam_bootstrap_sizes": $sam_sizes
}
JSON
cat "$out"
echo "build_times: written to ${out#"$root"/}" >&2
