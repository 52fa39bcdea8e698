#!/usr/bin/env bash
# Fuzz every cargo fuzz target in fuzz/ for a bounded time (FUZZ_SECONDS each, default 30), with
# the nightly toolchain and cargo-fuzz from scripts/install/cargo-fuzz.sh. The kept inputs in
# tests/fixtures/fuzz/<target>/ seed each run; new corpus entries go to fuzz/corpus/<target>/
# (not in Git). A crash, a timeout (FUZZ_TIMEOUT seconds for one input, default 10) or an input
# needing more than FUZZ_RSS_MB (default 2048) fails the run; libFuzzer writes the input to
# fuzz/artifacts/<target>/. Fix it, then keep the input in tests/fixtures/fuzz/<target>/ so that
# tests/fuzz_regressions.rs replays it on every `cargo test`.
#
#   scripts/fuzz.sh                  every target, 30 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh cel
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH"
seconds="${FUZZ_SECONDS:-30}"
timeout="${FUZZ_TIMEOUT:-10}"
rss="${FUZZ_RSS_MB:-2048}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing: run scripts/install/cargo-fuzz.sh" >&2
  exit 1
fi
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
# No sanitizer: the crate forbids unsafe code, and an instrumented build of the whole dependency
# tree with AddressSanitizer takes several times longer to build and to run.
# The fuzz build lives outside the clone (like the control plane), so a CI run in a fresh clone
# on the same machine rebuilds only what changed: cold, the nightly build of the whole tree takes
# minutes.
target_dir="${SECURESCORE_FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/securescore/fuzz-target}"
mkdir -p "$target_dir"
flags=(--sanitizer none --release --debug-assertions --target-dir "$target_dir")
(cd fuzz && cargo +nightly fuzz build "${flags[@]}")
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz.sh: $target for ${seconds}s"
  status=0
  (cd fuzz && cargo +nightly fuzz run "${flags[@]}" "$target" "corpus/$target" \
    "../tests/fixtures/fuzz/$target" -- \
    -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss" -print_final_stats=1) \
    >"$log" 2>&1 || status=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz.sh: $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
