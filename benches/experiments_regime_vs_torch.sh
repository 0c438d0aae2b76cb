#!/usr/bin/env bash
# Training speed where the experiments train (the speed issue's benchmark): repsim (flex, its
# kernels) against PyTorch on the same cores, alternated, ResNet-20 x2 and x4 at 16 x 16 in
# batches of 64 (wide_vs_deep's regime) and ResNet-20 at 32 x 32 in batches of 128. Prints
# images/s of whole training steps (forward, cross-entropy, backward, SGD with momentum) and
# repsim's split of a step into data, forward, backward and optimizer. Run from the repository
# root after `cargo build --examples`; PyTorch (`pip install torch`) is optional.
#   bash benches/experiments_regime_vs_torch.sh [rounds]
set -uo pipefail
T=${CARGO_TARGET_DIR:-target}/debug/examples
[ -x "$T/train_step_profile" ] || T=$HOME/.cache/repsim-target/debug/examples
ROUNDS=${1:-2}
# depth width side batch steps
CASES=("20 2 16 64 10" "20 4 16 64 4" "20 1 32 128 6")
for round in $(seq "$ROUNDS"); do
  echo "# round $round"
  for case in "${CASES[@]}"; do
    read -r depth width side batch steps <<<"$case"
    "$T/train_step_profile" --depth "$depth" --width "$width" --side "$side" --batch "$batch" \
      --steps "$steps" 2>/dev/null | sed "s/^/repsim ResNet-$depth x$width ${side}px b$batch: /" | tail -5
    python3 benches/train_vs_torch.py --threads 2 --depth "$depth" --width "$width" \
      --side "$side" --batch "$batch" --steps "$((steps * 2))" 2>/dev/null | tail -1
  done
done
