#!/usr/bin/python3
"""PyTorch with the MGDA paper's full schedule, for comparison with
`mtl train --method mgda-ub --epochs 100 --lr-step 10 --lr-first-step 9 --lr-gamma 0.85`.

The network, data recipe and MGDA-UB step are those of the shared reference
script (../shared/bench/torch_multimnist.py, imported, not copied); this adds
only its missing piece, the learning-rate schedule of Sener & Koltun's code:
lr x0.85 when (epoch + 1) % 10 == 0. Prints one JSON line per epoch.

Usage: /usr/bin/python3 apps/experiments/torch_mgda_schedule.py --mnist data/mnist
           [--epochs 100] [--seed 0] [--threads 1] [--reference PATH]
"""
import argparse, importlib.util, json, time
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--mnist", required=True)
ap.add_argument("--epochs", type=int, default=100)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--threads", type=int, default=1)
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
trunk, heads = ref.Trunk(), [ref.Head(), ref.Head()]
params = list(trunk.parameters()) + [p for h in heads for p in h.parameters()]
opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
n, batch = len(xtr), 256
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
    trunk.eval(); [h.eval() for h in heads]
    with torch.no_grad():
        z = trunk(xte)
        acc = [float((h(z).argmax(1) == y).float().mean()) for h, y in zip(heads, (lte, rte))]
    print(json.dumps({"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "epoch_s": round(dt, 3),
                      "acc_left": round(acc[0], 4), "acc_right": round(acc[1], 4)}), flush=True)
