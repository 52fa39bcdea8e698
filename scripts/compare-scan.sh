#!/usr/bin/env bash
# Compare two `securescore` binaries' scans byte for byte: stdout, stderr and exit code for
# --format json, sarif, table and prometheus (--verbose, a fixed --now) on each input directory,
# and for every YAML/JSON file of them alone through standard input. For changes that must not
# change results (parser, allocator, build settings). Prints each difference; exits 1 if any.
#
#   scripts/compare-scan.sh OLD_BINARY NEW_BINARY [DIR ...]
# Default DIRs: ../shared/corpus (or $SECURESCORE_CORPUS) and each of its projects,
# tests/fixtures, examples, target/bench/cluster-10000 when it exists.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY [DIR ...]" >&2; exit 2; }
old="$1" new="$2"; shift 2
if [ $# -gt 0 ]; then
  dirs=("$@")
else
  corpus="${SECURESCORE_CORPUS:-../shared/corpus}"
  dirs=("$corpus" "$corpus"/*/ tests/fixtures examples)
  [ -d target/bench/cluster-10000 ] && dirs+=(target/bench/cluster-10000)
fi
now=2026-11-27T12:00:00Z
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
differ=0
run() {  # label, then the scan arguments; the input comes from $stdin_file or /dev/null
  local label="$1"; shift
  for which in old new; do
    local bin="$old"; [ "$which" = new ] && bin="$new"
    "$bin" scan "$@" --now "$now" < "${stdin_file:-/dev/null}" > "$work/$which.out" 2> "$work/$which.err"
    echo "exit $?" >> "$work/$which.out"
  done
  if ! cmp -s "$work/old.out" "$work/new.out" || ! cmp -s "$work/old.err" "$work/new.err"; then
    echo "DIFFERENT: $label"; differ=1
  fi
}
files=0
for dir in "${dirs[@]}"; do
  for format in json sarif table prometheus; do
    stdin_file= run "$dir --format $format" "$dir" --format "$format" --verbose
  done
done
while IFS= read -r -d '' f; do
  stdin_file="$f" run "$f (stdin)" - --format json
  files=$((files + 1))
done < <(find "${dirs[@]}" \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -type f -print0 | sort -zu)
echo "compared ${#dirs[@]} directories x 4 formats and $files files alone: $([ $differ = 0 ] && echo no difference || echo DIFFERENCES)"
exit $differ
