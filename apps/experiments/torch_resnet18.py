#!/usr/bin/python3
"""PyTorch reference for the engine's ResNet-18 training speed (`make bench`,
issue "Fast on the networks that matter"), written for the bench: the same
layers and shapes as mtl/models/resnet.h, built here from torch.nn, not
torchvision (Debian's python3-torch has no torchvision).

  trunk  conv 3x3 (C -> w, stride s, pad 1, no bias), BN, ReLU
         4 stages of 2 basic blocks (w, 2w, 4w, 8w; stride 1, 2, 2, 2; a 1x1
         projection + BN where the shape changes), global average pooling
  heads  K x Linear(8w -> 1), binary cross-entropy on logits (the engine's
         TaskLoss::BinaryLogits, as `mtl scale` trains the mnist-grid tasks)
  stem stride s: the smallest power of two with min(H, W) / s <= 32.

Methods, as the engine runs them (mtl/methods/weighting.cpp, mgda.cpp):
  uniform  backward of sum_t L_t
  mgda-ub  one trunk forward; per task, the head's backward on a detached Z
           gives g_t = dL_t/dZ and head t's gradients; alpha = argmin over the
           simplex of |sum_t alpha_t g_t|^2 (closed form for K = 2, the paper's
           Frank-Wolfe otherwise, on the Gram matrix scaled by its largest
           entry, as mtl/solvers/min_norm.cpp); head t's gradients scaled by
           alpha_t; one trunk backward with upstream sum_t alpha_t g_t.
SGD, lr 0.01, momentum 0.9. Inputs are random normal images and labels random
0/1 (the speed does not depend on the values), prepared before timing.

Usage: /usr/bin/python3 torch_resnet18.py [--tasks 40] [--method uniform|mgda-ub]
           [--image-size 56] [--channels 1] [--width 16] [--batch 64]
           [--warmup 2] [--steps 5] [--threads 1] [--seed 0]
Prints one JSON line: train samples/s (median step), seconds per step (wall and
process CPU), peak RSS.
"""
import argparse, json, resource, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (self.down(x) if self.down is not None else x))


class Trunk(nn.Module):
    def __init__(self, channels, size, w):
        super().__init__()
        s = 1
        while size // s > 32:
            s *= 2
        self.conv1 = nn.Conv2d(channels, w, 3, s, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        stages = []
        for cin, cout, stride in ((w, w, 1), (w, 2 * w, 2), (2 * w, 4 * w, 2), (4 * w, 8 * w, 2)):
            stages += [Block(cin, cout, stride), Block(cout, cout, 1)]
        self.layers = nn.Sequential(*stages)

    def forward(self, x):
        h = self.layers(F.relu(self.bn1(self.conv1(x))))
        return h.mean((2, 3))


def min_norm(G):
    """alpha on the simplex minimising alpha^T G alpha: closed form for K <= 2,
    else the best pair as the start and Frank-Wolfe (max 250 iterations, stop
    when the L1 change of alpha < 1e-5), as mtl/solvers/min_norm.cpp."""
    K = G.shape[0]
    M = (G + G.t()) / 2
    M = M / max(float(M.abs().max()), 1e-30)
    def pair(v11, v12, v22):  # weight on the first of two vectors
        if v12 >= v11:
            return 1.0
        if v12 >= v22:
            return 0.0
        return min(max((v22 - v12) / ((v11 - v12) + (v22 - v12)), 0.0), 1.0)
    if K == 1:
        return [1.0]
    Mf = M.tolist()
    if K == 2:
        a = pair(Mf[0][0], Mf[0][1], Mf[1][1])
        return [a, 1 - a]
    best, alpha = None, None
    for i in range(K):
        for j in range(i + 1, K):
            a = pair(Mf[i][i], Mf[i][j], Mf[j][j])
            v = a * a * Mf[i][i] + 2 * a * (1 - a) * Mf[i][j] + (1 - a) ** 2 * Mf[j][j]
            if best is None or v < best:
                best, alpha = v, [0.0] * K
                alpha[i], alpha[j] = a, 1 - a
    for _ in range(250):
        Ma = [sum(Mf[r][c] * alpha[c] for c in range(K)) for r in range(K)]
        t = min(range(K), key=lambda r: Ma[r])
        g = pair(sum(a * m for a, m in zip(alpha, Ma)), Ma[t], Mf[t][t])
        new = [g * a + (1 - g) * (1.0 if r == t else 0.0) for r, a in enumerate(alpha)]
        change = sum(abs(p - q) for p, q in zip(new, alpha))
        alpha = new
        if change < 1e-5:
            break
    return alpha


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--method", default="uniform", choices=["uniform", "mgda-ub"])
    ap.add_argument("--image-size", type=int, default=56)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    K = a.tasks
    trunk = Trunk(a.channels, a.image_size, a.width)
    heads = nn.ModuleList(nn.Linear(8 * a.width, 1) for _ in range(K))
    opt = torch.optim.SGD(list(trunk.parameters()) + list(heads.parameters()), lr=0.01, momentum=0.9)
    trunk.train()
    n = a.warmup + a.steps
    xs = [torch.randn(a.batch, a.channels, a.image_size, a.image_size) for _ in range(n)]
    ys = [torch.randint(0, 2, (K, a.batch, 1)).float() for _ in range(n)]

    def step(x, y):
        opt.zero_grad()
        z = trunk(x)
        if a.method == "uniform":
            loss = sum(F.binary_cross_entropy_with_logits(heads[t](z), y[t]) for t in range(K))
            loss.backward()
        else:
            zd = z.detach().requires_grad_(True)
            g = []
            for t in range(K):
                F.binary_cross_entropy_with_logits(heads[t](zd), y[t]).backward()
                g.append(zd.grad.clone())
                zd.grad.zero_()
            gf = torch.stack([v.flatten() for v in g])
            alpha = min_norm((gf.double() @ gf.double().t()))
            for t in range(K):
                for p in heads[t].parameters():
                    p.grad.mul_(alpha[t])
            z.backward(sum(alpha[t] * g[t] for t in range(K)))
        opt.step()

    times, cpu = [], []
    for i in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        step(xs[i], ys[i])
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    median = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else 0.5 * (sorted(v)[len(v) // 2 - 1] + sorted(v)[len(v) // 2])
    med = median(times)
    print(json.dumps({"framework": "torch", "model": f"resnet18-w{a.width}", "input": [a.channels, a.image_size, a.image_size],
                      "tasks": K, "method": a.method, "threads": a.threads, "batch": a.batch, "step_s": round(med, 4), "cpu_s": round(median(cpu), 4),
                      "train_samples_per_s": round(a.batch / med, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}), flush=True)


if __name__ == "__main__":
    main()
