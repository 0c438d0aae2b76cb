#!/usr/bin/env bash
# Does a training give the same numbers on an AVX2-only CPU as on this one?
#
# Runs one tiny training (a ResNet-8, 256 shapes images of 16 px, 2 epochs, batch 64) natively
# and under QEMU's user-mode emulation of a Haswell CPU (AVX2 and FMA, no AVX-512: the narrower
# SIMD path that run-time dispatch picks on such machines), then compares the two runs'
# metrics.jsonl digit for digit. Needs qemu-user (Debian: apt-get install qemu-user; QEMU 7.2
# or later emulates AVX2) and a built repsim (cargo build). The emulated run takes about 5
# minutes on 2 cores. Exit 0 when the runs agree (they do since repsim computes the
# cross-entropy itself: see the book's notes, "Results across CPUs"), 1 when they differ (the
# lines are shown).
#
#   tests/cross_cpu/avx2_vs_native.sh [PATH/TO/repsim]
set -euo pipefail
cd "$(dirname "$0")/../.."
repsim="${1:-${CARGO_TARGET_DIR:-target}/debug/repsim}"
if ! command -v qemu-x86_64 >/dev/null 2>&1; then
  echo "qemu-x86_64 is not installed (apt-get install qemu-user)" >&2
  exit 2
fi
if [ ! -x "$repsim" ]; then
  echo "$repsim: no such program (cargo build, or pass the path)" >&2
  exit 2
fi
work="$(mktemp -d /tmp/repsim-cross-cpu.XXXXXX)"
trap 'rm -rf "$work"' EXIT
train=(-q train --model resnet --depth 8 --data shapes --side 16 --train-count 256
  --test-count 64 --batch-size 64 --epochs 2 --seed 5 --device flex)
"$repsim" "${train[@]}" --out "$work/native" >/dev/null
qemu-x86_64 -cpu Haswell "$repsim" "${train[@]}" --out "$work/avx2" >/dev/null 2>&1
# The numbers of each epoch, without the timings.
numbers() {
  sed -E 's/"(examples_per_second|seconds)":[^,}]*,?//g' "$1/metrics.jsonl"
}
if diff <(numbers "$work/native") <(numbers "$work/avx2"); then
  echo "the same numbers on this CPU and on an emulated AVX2 one"
else
  echo "different numbers on this CPU (above, <) and on an emulated AVX2 one (>)"
  exit 1
fi
