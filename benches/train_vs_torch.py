#!/usr/bin/env python3
"""Training and inference images/s of a CIFAR ResNet-20 (He et al. 2016: 3x3 stem, 3 stages of
3 basic blocks, 16/32/64 channels, projection shortcuts as repsim's default) in PyTorch on the
CPU, with the same batch, image size and thread count as `benches/train_throughput.sh` gives
for repsim on flex. Needs `pip install torch` (not a test or CI dependency).

    python3 benches/train_vs_torch.py --threads 2 --batch 128 --side 32 --steps 20

Prints images/s for training steps (forward, cross-entropy, backward, SGD step with momentum
0.9 and weight decay 5e-4) and for inference (eval mode, no grad), each the median of the
timed steps after 3 warm-up steps.
"""
import argparse
import statistics
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    raise SystemExit("PyTorch is not installed (pip install torch); skipping the comparison")


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


class ResNet(nn.Module):
    def __init__(self, depth=20, width=1, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        c = [16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(3, 16 * width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16 * width)
        layers, cin = [], 16 * width
        for stage, cout in enumerate(c):
            for i in range(n):
                layers.append(Block(cin, cout, 2 if (stage > 0 and i == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--side", type=int, default=32)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--width", type=int, default=1)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ResNet(a.depth, a.width)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, a.side, a.side)
    y = torch.randint(0, 10, (a.batch,))

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    def timed(step):
        for _ in range(3):
            step()
        times = []
        for _ in range(a.steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        return a.batch / statistics.median(times)

    model.train()
    train = timed(train_step)
    model.eval()

    def infer():
        with torch.no_grad():
            model(x)

    inference = timed(infer)
    print(f"pytorch {torch.__version__}, {a.threads} threads, ResNet-{a.depth} x{a.width}, {a.side}x{a.side}, batch {a.batch}: "
          f"training {train:.0f} images/s, inference {inference:.0f} images/s")


if __name__ == "__main__":
    main()
