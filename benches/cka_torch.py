#!/usr/bin/env python3
"""The numpy baseline's minibatch CKA (../shared/reference/cka_numpy.py) written in PyTorch:
the same math, op for op (U-centred Gram per layer and batch, all cross-layer HSIC terms from
one product of the stacked, flattened Grams), on the CPU with torch's default threads.

usage: cka_torch.py A.npz B.npz [--batch 256] [--json OUT]
Prints the wall time of the computation (loading excluded) as its last line.
"""
import argparse
import json
import time

import numpy as np
import torch


def u_center(k):
    n = k.shape[0]
    k = k.clone()
    k.fill_diagonal_(0)
    means = k.sum(0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    k -= means[:, None]
    k -= means[None, :]
    k.fill_diagonal_(0)
    return k


def stacked_grams(layers, s, e):
    out = []
    for x in layers:
        xb = x[s:e].reshape(e - s, -1)
        out.append(u_center(xb @ xb.T).reshape(-1))
    return torch.stack(out)


def minibatch_cka(a, b, batch):
    n = a[0].shape[0]
    hab = torch.zeros((len(a), len(b)), dtype=torch.float64)
    haa = torch.zeros(len(a), dtype=torch.float64)
    hbb = torch.zeros(len(b), dtype=torch.float64)
    for s in range(0, n - batch + 1, batch):
        ga = stacked_grams(a, s, s + batch)
        gb = stacked_grams(b, s, s + batch)
        hab += (ga @ gb.T).double()
        haa += (ga * ga).sum(1).double()
        hbb += (gb * gb).sum(1).double()
    return (hab / torch.sqrt(torch.outer(haa, hbb))).numpy()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--json")
    args = p.parse_args()
    za, zb = np.load(args.a), np.load(args.b)
    a = [torch.from_numpy(np.ascontiguousarray(za[k], dtype=np.float32)) for k in za.files]
    b = [torch.from_numpy(np.ascontiguousarray(zb[k], dtype=np.float32)) for k in zb.files]
    t = time.perf_counter()
    with torch.no_grad():
        m = minibatch_cka(a, b, args.batch)
    dt = time.perf_counter() - t
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": za.files, "cols": zb.files, "values": m.tolist()}, f)
    print("%.4f" % dt)


if __name__ == "__main__":
    main()
