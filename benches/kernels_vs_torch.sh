#!/usr/bin/env bash
# repsim's flex kernels against burn's own ops (REPSIM_KERNELS=burn) and against PyTorch, in
# one run on the same cores, alternated: training images/s of ResNet-20 at 32 x 32 and ResNet-8
# at 16 x 16 (batch 128, SGD step included) and inference images/s of ResNet-20 at 32 x 32.
# Run from the repository root after `cargo build --examples --features cli`; PyTorch
# (`pip install torch`) is optional and skipped when absent.
#   bash benches/kernels_vs_torch.sh [rounds]
set -uo pipefail
T=${CARGO_TARGET_DIR:-target}/debug/examples
[ -x "$T/train_step_profile" ] || T=$HOME/.cache/repsim-target/debug/examples
ROUNDS=${1:-2}
train() { # kernels depth side steps
  REPSIM_KERNELS=$1 "$T/train_step_profile" --depth "$2" --side "$3" --batch 128 --steps "$4" 2>/dev/null \
    | awk -v k="$1" -v d="$2" -v s="$3" '/^step/ {print "repsim(" k ") ResNet-" d " " s "px training: " $(NF-1) " images/s"}'
}
infer() { # kernels
  REPSIM_KERNELS=$1 "$T/model_throughput" --batch 128 --reps 3 2>/dev/null \
    | awk -v k="$1" '$1 == "resnet20" {print "repsim(" k ") ResNet-20 32px inference: " $3 " images/s"}'
}
torch() { # depth side steps
  python3 benches/train_vs_torch.py --threads 2 --batch 128 --depth "$1" --side "$2" --steps "$3" 2>/dev/null | tail -1
}
for round in $(seq "$ROUNDS"); do
  echo "# round $round"
  for k in repsim burn; do
    train "$k" 20 32 6
    train "$k" 8 16 20
    infer "$k"
  done
  torch 20 32 10
  torch 8 16 20
done
