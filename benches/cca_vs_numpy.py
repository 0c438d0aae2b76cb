#!/usr/bin/env python3
"""Benchmark: repsim's 12 x 12 layer SVCCA and PWCCA matrices against shared/reference/simref.py.

Makes (once) two .npz files of 12 layers x 5000 examples x 512 features (float32) whose layers
share a latent code, then times as whole processes, on the same files:

  repsim compare A.npz B.npz --metric svcca,pwcca --pwcca-convention textbook --device flex --json ...
  python3 (this script) --numpy A.npz B.npz: simref.svcca and simref.pwcca for every pair

checks that the matrices agree, and prints the times and their ratio. (simref.pwcca is the
textbook convention; the google one depends on SVD signs, see the README.)

usage: benches/cca_vs_numpy.py [--data DIR] [--repsim PATH] [--layers 12]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("REPSIM_SHARED", ROOT.parent / "shared"))
N, D = 5000, 512


def make_data(directory: Path, layers: int):
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / f"cca_A_{layers}.npz", directory / f"cca_B_{layers}.npz"
    if all(p.exists() for p in paths):
        return paths
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((N, 64)).astype(np.float32)
    for path, seed in zip(paths, (1, 2)):
        rng = np.random.default_rng(seed)
        arrays = {}
        for i in range(layers):
            k = 4 + 5 * i
            signal = latent[:, :k] @ rng.standard_normal((k, D)).astype(np.float32)
            arrays[f"layer{i:02d}"] = np.maximum(signal + 2.0 * rng.standard_normal((N, D)).astype(np.float32), 0)
        np.savez(path, **arrays)
    return paths


def numpy_matrices(a_path, b_path):
    sys.path.insert(0, str(SHARED / "reference"))
    import simref
    za, zb = np.load(a_path), np.load(b_path)
    a = [za[k] for k in za.files]
    b = [zb[k] for k in zb.files]
    svcca = [[simref.svcca(x, y) for y in b] for x in a]
    pwcca = [[simref.pwcca(x, y) for y in b] for x in a]
    return {"svcca": svcca, "pwcca": pwcca}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(ROOT / "bench-data"))
    p.add_argument("--repsim")
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--numpy", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.numpy:  # the baseline process
        with open(args.out, "w") as f:
            json.dump(numpy_matrices(*args.numpy), f)
        return

    a_path, b_path = make_data(Path(args.data), args.layers)
    binary = args.repsim
    if not binary:
        subprocess.run(["cargo", "build", "--bin", "repsim"], cwd=ROOT, check=True)
        binary = str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "repsim")
    out = Path(args.data)
    ours_cmd = [binary, "compare", str(a_path), str(b_path), "--metric", "svcca,pwcca",
                "--pwcca-convention", "textbook", "--device", "flex", "--json", str(out / "cca_repsim.json")]
    numpy_cmd = [sys.executable, __file__, "--numpy", str(a_path), str(b_path), "--out", str(out / "cca_numpy.json")]

    results = {}
    for name, cmd in (("repsim", ours_cmd), ("numpy", numpy_cmd)):
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        results[name] = time.perf_counter() - t
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n{done.stderr}")
        if name == "repsim":
            phases = [l for l in done.stderr.splitlines() if l.startswith(("loaded", "device")) or l.endswith(" s")]
    ours = {r["metric"]: np.array(r["values"], dtype=float) for r in json.load(open(out / "cca_repsim.json"))["results"]}
    ref = {k: np.array(v) for k, v in json.load(open(out / "cca_numpy.json")).items()}
    print(f"inputs: 2 x {args.layers} layers, N = {N}, D = {D} (float32)")
    for line in phases:
        print("repsim " + line)
    for metric in ("svcca", "pwcca"):
        diff = np.abs(ours[metric] - ref[metric]).max()
        print(f"{metric}: values {ref[metric].min():.3f} .. {ref[metric].max():.3f}, max |repsim - simref| = {diff:.2e}")
    print(f"whole process: repsim {results['repsim']:.1f} s, numpy (simref) {results['numpy']:.1f} s, "
          f"ratio numpy / repsim {results['numpy'] / results['repsim']:.2f}x")


if __name__ == "__main__":
    main()
