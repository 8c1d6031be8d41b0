#!/usr/bin/python3
"""PyTorch with the MGDA paper's full schedule, for comparison with
`mtl train --method mgda-ub --epochs 100 --lr-step 10 --lr-first-step 9 --lr-gamma 0.85 [--val 10000]`.

The network, data recipe and MGDA-UB step are those of the shared reference
script (../shared/bench/torch_multimnist.py, imported, not copied); this adds
the learning-rate schedule of Sener & Koltun's code (lr x0.85 when
(epoch + 1) % 10 == 0) and, with --val N, the selection their recipe states:
N composed training images are held out (a permutation drawn from --seed),
the model is trained on the rest, and the epoch with the best mean validation
accuracy is selected; its test accuracy is the result. Prints one JSON line per
epoch and, last, a summary line {"selected_epoch", "best_val_acc", "best_test_acc", ...}.

Usage: /usr/bin/python3 apps/experiments/torch_mgda_schedule.py --mnist data/mnist
           [--epochs 100] [--seed 0] [--threads 1] [--val 0] [--reference PATH]
"""
import argparse, importlib.util, json, time
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--mnist", required=True)
ap.add_argument("--epochs", type=int, default=100)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--val", type=int, default=0, help="hold N training images out for epoch selection")
ap.add_argument("--reference", default="../shared/bench/torch_multimnist.py")
a = ap.parse_args()
spec = importlib.util.spec_from_file_location("ref", a.reference)
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
load = lambda name: ref.read_idx(f"{a.mnist}/{name}")
xtr, ltr, rtr = (torch.from_numpy(v) for v in ref.multi_mnist(load("train-images-idx3-ubyte"),
                                                              load("train-labels-idx1-ubyte"), 1))
xte, lte, rte = (torch.from_numpy(v) for v in ref.multi_mnist(load("t10k-images-idx3-ubyte"),
                                                              load("t10k-labels-idx1-ubyte"), 2))
if not 0 <= a.val < len(xtr):
    raise SystemExit(f"--val must be in [0, {len(xtr)}), got {a.val}")
if a.val:
    split = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(1000 + a.seed))
    vi, ti = split[: a.val], split[a.val:]
    xva, lva, rva = xtr[vi], ltr[vi], rtr[vi]
    xtr, ltr, rtr = xtr[ti], ltr[ti], rtr[ti]
trunk, heads = ref.Trunk(), [ref.Head(), ref.Head()]
params = list(trunk.parameters()) + [p for h in heads for p in h.parameters()]
opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)


def accuracy(x, ys):
    trunk.eval(); [h.eval() for h in heads]
    with torch.no_grad():
        z = trunk(x)
        return [float((h(z).argmax(1) == y).float().mean()) for h, y in zip(heads, ys)]


n, batch = len(xtr), 256
best = None  # (mean val acc, epoch, val acc, test acc)
t_start = time.perf_counter()
for epoch in range(a.epochs):
    if (epoch + 1) % 10 == 0:
        for g in opt.param_groups:
            g["lr"] *= 0.85
    trunk.train(); [h.train() for h in heads]
    perm = torch.randperm(n)
    t0 = time.perf_counter()
    for s in range(0, n, batch):
        i = perm[s: s + batch]
        x, ys = xtr[i], (ltr[i], rtr[i])
        with torch.no_grad():
            z0 = trunk(x)
        grads = []
        for h, y in zip(heads, ys):
            z = z0.detach().requires_grad_(True)
            g, = torch.autograd.grad(F.nll_loss(h(z), y), z)
            grads.append(g)
        alpha = ref.min_norm_2(grads[0], grads[1])
        z = trunk(x)
        losses = [F.nll_loss(h(z), y) for h, y in zip(heads, ys)]
        loss = alpha * losses[0] + (1 - alpha) * losses[1]
        opt.zero_grad(); loss.backward(); opt.step()
    dt = time.perf_counter() - t0
    acc = accuracy(xte, (lte, rte))
    line = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "epoch_s": round(dt, 3),
            "acc_left": round(acc[0], 4), "acc_right": round(acc[1], 4)}
    if a.val:
        va = accuracy(xva, (lva, rva))
        line.update(val_left=round(va[0], 4), val_right=round(va[1], 4))
        if best is None or sum(va) / 2 > best[0]:  # first best wins a tie, as `mtl train`
            best = (sum(va) / 2, epoch + 1, va, acc)
    print(json.dumps(line), flush=True)
if best is not None:
    print(json.dumps({"summary": True, "seed": a.seed, "val": a.val, "epochs": a.epochs,
                      "selected_epoch": best[1], "best_val_acc": [round(v, 4) for v in best[2]],
                      "best_test_acc": [round(v, 4) for v in best[3]], "last_test_acc": [round(v, 4) for v in acc],
                      "wall_s": round(time.perf_counter() - t_start, 1)}), flush=True)
