#!/usr/bin/env python3
"""Benchmark: repsim's layer x layer minibatch CKA against the numpy baseline, same inputs.

Makes (once) two .npz files of 16 layers x 2048 examples, feature widths 1k to 16k (float32,
under 1 GB each), with layers of A and B driven by a shared latent code so their CKAs are spread
over (0, 1). Then, alternating, R times each, as whole processes:

  repsim compare A.npz B.npz --metric minibatch_cka --batch-size 256 --device flex --json ...
  python3 shared/reference/cka_numpy.py A.npz B.npz --batch 256 --dtype float32 --json ...

checks that both matrices agree with a float64 numpy run, and prints the median wall times, their
ratio, and where repsim's time goes (the phase timings it prints on stderr).

usage: benches/minibatch_cka_vs_numpy.py [--reps 5] [--data DIR] [--device flex] [--repsim PATH]
Needs numpy; also times the same math in PyTorch (benches/cka_torch.py) when torch is
installed. Builds the repsim binary with `cargo build` (the dev profile, dependencies at
opt-level 3) unless --repsim names one.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("REPSIM_SHARED", ROOT.parent / "shared"))
WIDTHS = [1024] * 3 + [2048] * 3 + [4096] * 4 + [8192] * 4 + [16384] * 2
N = 2048
LATENT = 128


def make_data(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    a_path, b_path = directory / "A.npz", directory / "B.npz"
    if a_path.exists() and b_path.exists():
        return a_path, b_path
    print(f"generating {len(WIDTHS)} layers x {N} examples, widths {WIDTHS[0]}..{max(WIDTHS)} into {directory}")
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((N, LATENT)).astype(np.float32)
    for path, seed in ((a_path, 1), (b_path, 2)):
        rng = np.random.default_rng(seed)
        layers = {}
        for i, width in enumerate(WIDTHS):
            # Later layers depend more on the latent code, earlier ones more on noise.
            signal = latent[:, : 8 + 6 * i] @ rng.standard_normal((8 + 6 * i, width)).astype(np.float32)
            noise = rng.standard_normal((N, width)).astype(np.float32)
            layers[f"layer{i:02d}"] = np.maximum(signal * (0.2 + 0.1 * i) + noise, 0).astype(np.float32)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **layers)
        tmp.rename(path)
        print(f"  {path.name}: {path.stat().st_size / 1e6:.0f} MB")
    return a_path, b_path


def repsim_binary(args) -> str:
    if args.repsim:
        return args.repsim
    subprocess.run(["cargo", "build", "--bin", "repsim"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(Path(target) / "debug" / "repsim")


def timed(cmd):
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return elapsed, done


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--data", default=str(ROOT / "bench-data"))
    p.add_argument("--device", default="flex")
    p.add_argument("--repsim")
    args = p.parse_args()

    a_path, b_path = make_data(Path(args.data))
    binary = repsim_binary(args)
    baseline = SHARED / "reference" / "cka_numpy.py"
    out = Path(args.data)
    repsim_cmd = [binary, "compare", str(a_path), str(b_path), "--metric", "minibatch_cka",
                  "--batch-size", "256", "--device", args.device, "--json", str(out / "repsim.json")]
    numpy_cmd = [sys.executable, str(baseline), str(a_path), str(b_path), "--batch", "256",
                 "--dtype", "float32", "--json", str(out / "numpy32.json")]

    # The same math in PyTorch, when it is installed (CPU, torch's default threads).
    try:
        import torch  # noqa: F401
        torch_cmd = [sys.executable, str(ROOT / "benches" / "cka_torch.py"), str(a_path), str(b_path),
                     "--batch", "256", "--json", str(out / "torch.json")]
    except ImportError:
        torch_cmd = None
        print("PyTorch is not installed (pip install torch): skipping its side of the comparison")

    # Reference in float64 (once, not timed against).
    subprocess.run([sys.executable, str(baseline), str(a_path), str(b_path), "--batch", "256",
                    "--dtype", "float64", "--json", str(out / "numpy64.json")], check=True, capture_output=True)

    # Warm the page cache and both programs once, then alternate.
    timed(repsim_cmd)
    timed(numpy_cmd)
    if torch_cmd:
        timed(torch_cmd)
    repsim_times, numpy_times, numpy_inner, phases = [], [], [], []
    torch_times, torch_inner = [], []
    for _ in range(args.reps):
        if torch_cmd:
            t, done = timed(torch_cmd)
            torch_times.append(t)
            torch_inner.append(float(done.stdout.strip().splitlines()[-1]))
        t, done = timed(repsim_cmd)
        repsim_times.append(t)
        loaded = re.search(r"loaded .* in ([0-9.]+) s", done.stderr)
        compute = re.search(r"minibatch_cka: ([0-9.]+) s", done.stderr)
        phases.append((float(loaded.group(1)), float(compute.group(1))))
        t, done = timed(numpy_cmd)
        numpy_times.append(t)
        numpy_inner.append(float(done.stdout.strip().splitlines()[-1]))

    ours = np.array(json.load(open(out / "repsim.json"))["results"][0]["values"], dtype=float)
    np32 = np.array(json.load(open(out / "numpy32.json"))["values"])
    np64 = np.array(json.load(open(out / "numpy64.json"))["values"])
    med = statistics.median
    print(f"inputs: 2 x {len(WIDTHS)} layers, N = {N}, batches of 256, widths {WIDTHS}")
    print(f"CKA values span {np64.min():.3f} .. {np64.max():.3f}")
    print(f"max |repsim - numpy float64| = {np.abs(ours - np64).max():.2e}")
    print(f"max |numpy float32 - numpy float64| = {np.abs(np32 - np64).max():.2e}")
    print(f"max |repsim - numpy float32| = {np.abs(ours - np32).max():.2e}")
    agree = np.abs(ours - np64).max() < 1e-4
    print(f"matrices agree (1e-4): {agree}")
    print(f"whole process, median of {args.reps}: repsim {med(repsim_times):.2f} s "
          f"(min {min(repsim_times):.2f}, max {max(repsim_times):.2f}); numpy float32 {med(numpy_times):.2f} s "
          f"(min {min(numpy_times):.2f}, max {max(numpy_times):.2f})")
    print(f"numpy's own timing of its computation (loading excluded): {med(numpy_inner):.2f} s")
    print(f"repsim phases (median): load {med(x[0] for x in phases):.2f} s, "
          f"minibatch CKA {med(x[1] for x in phases):.2f} s")
    print(f"ratio numpy / repsim (whole process): {med(numpy_times) / med(repsim_times):.2f}x")
    if torch_cmd:
        tm = np.array(json.load(open(out / "torch.json"))["values"])
        torch_agree = np.abs(tm - np64).max() < 1e-4
        agree = agree and torch_agree
        print(f"max |torch - numpy float64| = {np.abs(tm - np64).max():.2e} (agree: {torch_agree})")
        print(f"PyTorch {torch.__version__}, whole process, median of {args.reps}: {med(torch_times):.2f} s "
              f"(min {min(torch_times):.2f}, max {max(torch_times):.2f}); its own timing of the "
              f"computation {med(torch_inner):.2f} s")
        print(f"ratio torch / repsim (whole process): {med(torch_times) / med(repsim_times):.2f}x")
    if not agree:
        sys.exit("the matrices disagree")


if __name__ == "__main__":
    main()
