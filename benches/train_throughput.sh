#!/usr/bin/env bash
# Training throughput on flex and the Tracker's overhead, as whole `repsim train` processes.
# Run from the repository root after `cargo build` (the dev profile the tests use):
#   bash benches/train_throughput.sh
# Prints each run's per-epoch line (examples/s counts the training steps only; seconds is the
# whole epoch: training, evaluation, checkpoint and, with --track, the observation).
set -euo pipefail
R=${CARGO_TARGET_DIR:-target}/debug/repsim
[ -x "$R" ] || R=$HOME/.cache/repsim-target/debug/repsim
O=$(mktemp -d)
trap 'rm -rf "$O"' EXIT
run() {
  local name=$1; shift
  "$R" train --out "$O/$name" --quiet --device flex --schedule constant "$@" 2>/dev/null \
    | grep -E '^epoch' | sed "s/^/$name: /"
  rm -rf "$O/$name"
}
run resnet20-32px --model resnet --depth 20 --side 32 --train-count 2560 --test-count 256 --epochs 2
run resnet8-16px --model resnet --depth 8 --side 16 --train-count 10000 --test-count 256 --epochs 2
# The Tracker's overhead: the same epoch without and with one observation (500 probe images,
# 12 block-level layers), alternated three times.
for i in 1 2 3; do
  run "resnet20-16px" --model resnet --depth 20 --side 16 --train-count 10000 --test-count 1000 --epochs 1
  run "resnet20-16px+track" --model resnet --depth 20 --side 16 --train-count 10000 --test-count 1000 --epochs 1 --track 1 --probe-count 500
done
