#!/usr/bin/python3
"""PyTorch reference for the many-task MNIST grid (issue "Many tasks that work"):
the same recipe as `mtl train --dataset mnist-grid --model resnet18-w<W> --tasks K`,
written independently of the engine (data, network, MGDA-UB step, solver), to
tell what in MGDA-UB's many-task result is the method and what is the engine.

Data (the rule of datasets/grid_mnist.h, re-implemented): a G x G grid of MNIST
digits (G = 2 for K <= 4, 3 for K <= 27, else 4), every cell drawn uniformly from
the base set; tasks: the G*G cell digits, then even_r_c, then ge5_r_c, the
first K of them; the G*28 canvas is area-averaged to 56 x 56, rounded, and
normalised with MNIST's mean/std. --val images are held out of the training
images for the selection of the epoch (best mean validation accuracy).
Network: ResNet-18 (BasicBlock, widths W, 2W, 4W, 8W), a 3x3 stem with stride 2
for 56 x 56, global average pooling; one linear head per task (10 logits with
cross-entropy for a digit, 1 logit with BCE for a binary attribute).
Methods: sum (sum_t L_t), mean (sum_t L_t / K), mgda-ub (Sener & Koltun:
alpha = argmin ||sum_t alpha_t dL_t/dZ||^2 on the simplex, solved in float64 by
pairwise Frank-Wolfe to a duality gap <= 1e-10 f; the trunk trains on
sum_t alpha_t L_t; --heads scaled: head t on alpha_t L_t as the MGDA code,
unscaled: on L_t as the paper's Algorithm 2). SGD with momentum 0.9, or Adam
(--optimizer adam: PyTorch's defaults, betas 0.9 / 0.999, eps 1e-8).

Usage: /usr/bin/python3 apps/experiments/torch_grid_mgda.py --mnist data/mnist --tasks 40 (or names: even_0_0,ge5_1_1,...)
           [--method mgda-ub] [--heads scaled] [--lr 0.05] [--optimizer sgd] [--epochs 3] [--batch 64] [--width 8]
           [--train-limit 10000] [--val 1000] [--test-limit 2000] [--seed 0] [--threads 1]
Prints one JSON line per epoch and a summary line last.
"""
import argparse, json, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * data[3]).reshape(dims)


def grid_tasks(spec):
    """The grid and task names: K (digits first, the engine's rule) or names A,B,... (the smallest grid >= 2 holding them)."""
    if spec.isdigit():
        K = int(spec)
        G = 2 if K <= 4 else 3 if K <= 27 else 4
        cells = [(r, c) for r in range(G) for c in range(G)]
        names = [f"{kind}_{r}_{c}" for kind in ("digit", "even", "ge5") for r, c in cells]
        return G, names[:K]
    names = spec.split(",")
    for n in names:
        parts = n.split("_")
        if len(parts) != 3 or parts[0] not in ("digit", "even", "ge5") or not all(p in ("0", "1", "2", "3") for p in parts[1:]):
            raise SystemExit(f"--tasks: '{n}' is not digit_R_C, even_R_C or ge5_R_C with R, C < 4")
    return max(2, 1 + max(int(p) for n in names for p in n.split("_")[1:])), names


def compose(images, labels, n, G, tasks, rng):
    """n grid images and their K labels (digits 0..9, binary 0/1)."""
    idx = rng.integers(0, len(images), size=(n, G * G))
    canvas = images[idx].reshape(n, G, G, 28, 28).transpose(0, 1, 3, 2, 4).reshape(n, G * 28, G * 28)
    f = G * 28 / 56  # area averaging to 56 x 56 (exact block means for G = 2 (f = 1) and G = 4 (f = 2))
    if G == 3:  # 84 -> 56: each output pixel covers 1.5 x 1.5 input pixels
        w = np.zeros((56, 84))
        for o in range(56):
            a, b = o * 1.5, (o + 1) * 1.5
            for i in range(int(a), int(np.ceil(b))):
                w[o, i] = min(b, i + 1) - max(a, i)
        w /= 1.5
        small = np.einsum("oi,nij,pj->nop", w, canvas.astype(np.float64), w)
    else:
        k = int(f)
        small = canvas.reshape(n, 56, k, 56, k).astype(np.float64).mean(axis=(2, 4))
    x = (np.floor(small + 0.5) / 255.0 - 0.1307) / 0.3081
    digit = labels[idx]  # [n, G*G]
    ys = []
    for name in tasks:
        kind, r, c = name.split("_")
        d = digit[:, int(r) * G + int(c)]
        ys.append(d if kind == "digit" else (d % 2 == 0) if kind == "even" else (d >= 5))
    return torch.tensor(x[:, None], dtype=torch.float32), [torch.tensor(y.astype(np.int64)) for y in ys]


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        h = self.b2(self.c2(h))
        return F.relu(h + (x if self.short is None else self.short(x)))


class Trunk(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(1, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w)
        layers, cin = [], w
        for cout, s in [(w, 1), (2 * w, 2), (4 * w, 2), (8 * w, 2)]:
            layers += [Block(cin, cout, s), Block(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.layers(F.relu(self.bn(self.stem(x)))).mean(dim=(2, 3))


def family_mean(values):  # None for a family with no task
    return round(float(np.mean(values)), 4) if values else None


def task_loss(name, out, y):
    if name.startswith("digit"):
        return F.cross_entropy(out, y)
    return F.binary_cross_entropy_with_logits(out[:, 0], y.float())


def min_norm(M, tol=1e-10, max_iter=100000):
    """argmin_{alpha in simplex} alpha^T M alpha by pairwise Frank-Wolfe (float64),
    to a duality gap f - min_t (M alpha)_t <= tol f (+ 1e-15 max M_tt)."""
    K = len(M)
    a = np.zeros(K)
    a[np.argmin(np.diag(M))] = 1.0
    Ma = M @ a
    floor = 1e-15 * np.max(np.diag(M))
    for it in range(max_iter):
        f = a @ Ma
        s = int(np.argmin(Ma))
        if f - Ma[s] <= tol * f + floor:
            return a, f, it, (f - Ma[s]) / max(f, 1e-300)
        sup = np.flatnonzero(a > 0)
        v = int(sup[np.argmax(Ma[sup])])
        d_slope = Ma[s] - Ma[v]
        curv = M[s, s] + M[v, v] - 2 * M[s, v]
        g = a[v] if curv <= 0 else min(a[v], -d_slope / curv)
        a[s] += g
        a[v] -= g
        if a[v] <= 1e-300:
            a[v] = 0.0
        Ma = M @ a
    f = a @ Ma
    return a, f, max_iter, (f - Ma.min()) / max(f, 1e-300)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--tasks", default="40", help="K, or task names such as even_0_0,ge5_1_1")
    ap.add_argument("--method", default="mgda-ub", choices=["sum", "mean", "mgda-ub"])
    ap.add_argument("--heads", default="scaled", choices=["scaled", "unscaled"])
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--train-limit", type=int, default=10000)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--test-limit", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    G, tasks = grid_tasks(a.tasks)
    K = len(tasks)
    rng = np.random.default_rng(a.data_seed)
    tr_img, tr_lab = read_idx(f"{a.mnist}/train-images-idx3-ubyte"), read_idx(f"{a.mnist}/train-labels-idx1-ubyte")
    te_img, te_lab = read_idx(f"{a.mnist}/t10k-images-idx3-ubyte"), read_idx(f"{a.mnist}/t10k-labels-idx1-ubyte")
    x_all, y_all = compose(tr_img, tr_lab, a.train_limit + a.val, G, tasks, rng)
    xte, yte = compose(te_img, te_lab, a.test_limit, G, tasks, rng)
    split = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(1000 + a.seed))
    vi, ti = split[: a.val], split[a.val:]
    xva, yva = x_all[vi], [y[vi] for y in y_all]
    xtr, ytr = x_all[ti], [y[ti] for y in y_all]

    trunk = Trunk(a.width)
    heads = nn.ModuleList(nn.Linear(8 * a.width, 10 if n.startswith("digit") else 1) for n in tasks)
    params = list(trunk.parameters()) + list(heads.parameters())
    opt = (torch.optim.SGD(params, lr=a.lr, momentum=0.9) if a.optimizer == "sgd"
           else torch.optim.Adam(params, lr=a.lr))

    def accuracy(x, ys):
        trunk.eval(); heads.eval()
        with torch.no_grad():
            z = torch.cat([trunk(x[i: i + 500]) for i in range(0, len(x), 500)])
            acc = []
            for n, h, y in zip(tasks, heads, ys):
                o = h(z)
                pred = o.argmax(1) if n.startswith("digit") else (o[:, 0] > 0).long()
                acc.append(float((pred == y).float().mean()))
        return acc

    best, t_start = None, time.perf_counter()
    for epoch in range(a.epochs):
        trunk.train(); heads.train()
        perm = torch.randperm(len(xtr))
        t0, steps, alpha_sum, gaps = time.perf_counter(), 0, np.zeros(K), []
        for s in range(0, len(xtr), a.batch):
            i = perm[s: s + a.batch]
            x, ys = xtr[i], [y[i] for y in ytr]
            opt.zero_grad()
            z = trunk(x)
            if a.method in ("sum", "mean"):
                c = 1.0 if a.method == "sum" else 1.0 / K
                loss = sum(c * task_loss(n, h(z), y) for n, h, y in zip(tasks, heads, ys))
                loss.backward()
                alpha_sum += c
            else:
                zd = z.detach().requires_grad_(True)
                g = []
                for n, h, y in zip(tasks, heads, ys):
                    L = task_loss(n, h(zd), y)
                    gz, = torch.autograd.grad(L, zd, retain_graph=False)
                    g.append(gz.reshape(-1).double())
                Gm = torch.stack(g)
                alpha, f, it, gap = min_norm((Gm @ Gm.T).numpy())
                gaps.append(gap)
                alpha_sum += alpha
                # the trunk: sum_t alpha_t L_t through Z; the heads: alpha_t L_t (scaled) or L_t (unscaled)
                hw = alpha if a.heads == "scaled" else np.ones(K)
                head_loss = sum(float(w) * task_loss(n, h(zd), y) for w, n, h, y in zip(hw, tasks, heads, ys))
                head_loss.backward()
                upstream = sum(float(al) * gz for al, gz in zip(alpha, g)).reshape(z.shape).float()
                z.backward(upstream)
            opt.step()
            steps += 1
        dt = time.perf_counter() - t0
        te, va = accuracy(xte, yte), accuracy(xva, yva)
        w = alpha_sum / steps
        line = {"epoch": epoch + 1, "epoch_s": round(dt, 1), "ms_per_step": round(1000 * dt / steps, 1),
                "test_mean": round(float(np.mean(te)), 4), "val_mean": round(float(np.mean(va)), 4),
                "test_digit": family_mean([v for n, v in zip(tasks, te) if n.startswith("digit")]),
                "test_binary": family_mean([v for n, v in zip(tasks, te) if not n.startswith("digit")]),
                "weight_digit": round(float(sum(v for n, v in zip(tasks, w) if n.startswith("digit"))), 4),
                "weight_even": round(float(sum(v for n, v in zip(tasks, w) if n.startswith("even"))), 4),
                "weight_ge5": round(float(sum(v for n, v in zip(tasks, w) if n.startswith("ge5"))), 4)}
        if gaps:
            line["solver_gap_max"] = float(np.max(gaps))
        print(json.dumps(line), flush=True)
        if best is None or np.mean(va) > best[0]:
            best = (float(np.mean(va)), epoch + 1, te)
    print(json.dumps({"summary": True, "tasks": K, "method": a.method, "heads": a.heads, "optimizer": a.optimizer,
                      "lr": a.lr, "seed": a.seed,
                      "selected_epoch": best[1], "best_val_mean": round(best[0], 4),
                      "best_test_mean": round(float(np.mean(best[2])), 4),
                      "best_test_acc": dict(zip(tasks, [round(v, 4) for v in best[2]])),
                      "wall_s": round(time.perf_counter() - t_start, 1)}), flush=True)


if __name__ == "__main__":
    main()
