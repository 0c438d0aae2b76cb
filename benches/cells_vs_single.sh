#!/usr/bin/env bash
# One experiment's default run as a single process against the same plan run as cells with
# `xargs -P 2` (stage by stage), both from scratch on this machine, then the report cell alone.
# Usage: benches/cells_vs_single.sh [EXPERIMENT] [REPSIM_BINARY]
# (build first: cargo build --workspace --bins; the binary defaults to the dev build's).
set -euo pipefail
experiment="${1:-memorize_vs_generalize}"
repsim="${2:-${CARGO_TARGET_DIR:-target}/debug/repsim}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export REPSIM_DEVICE=flex

start=$(date +%s.%N)
"$repsim" experiment "$experiment" --out "$work/single" --quiet > "$work/single.log" 2>&1
single=$(echo "$(date +%s.%N) - $start" | bc)

start=$(date +%s.%N)
for stage in train analysis report; do
  "$repsim" experiment "$experiment" --out "$work/cells" --plan --plan-format lines --plan-stage "$stage" \
    | xargs -P 2 -I{} sh -c '{} >> '"$work"'/cells.log 2>&1'
done
cells=$(echo "$(date +%s.%N) - $start" | bc)

# The report cell alone, once everything else is complete (its record removed so it reruns).
rm "$work/cells/cells/report.json"
start=$(date +%s.%N)
"$repsim" experiment "$experiment" --out "$work/cells" --quiet --cell report > /dev/null 2>&1
report=$(echo "$(date +%s.%N) - $start" | bc)

same=$(python3 - "$work/single/results.json" "$work/cells/results.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for d in (a, b):
    d.pop("provenance")
    for m in d.get("models", []):
        m.pop("reused", None)
print("equal" if a == b else "DIFFERENT")
PY
)
printf '%s: single process %.0f s; cells with xargs -P 2 %.0f s (ratio %.2f); report cell alone %.1f s; results.json numbers %s\n' \
  "$experiment" "$single" "$cells" "$(echo "$cells / $single" | bc -l)" "$report" "$same"
