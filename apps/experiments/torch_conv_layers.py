#!/usr/bin/env python3
"""PyTorch twin of `mtl bench`'s per-layer convolution rates (apps/experiments/bench.cpp,
conv_layer_rates): the same ResNet-18 layers, read from the engine's bench JSON, timed the
same way in PyTorch at one thread, so that `make bench` can say per layer and per pass
(forward, input gradient, weight gradient) where each side is faster.

Protocol, as in conv_layer_rates: batch 64, x ~ U(-1, 1), w ~ U(-0.1, 0.1), dy ~ U(-1, 1);
the least process CPU time of REPS runs of (1) the forward without autograd, (2) forward +
backward with only w requiring grad, (3) the same with x requiring grad too; the weight
gradient is (2) - (1) and the input gradient (3) - (2). Padding: 1 for 3x3 kernels, 0 for 1x1.

Usage: torch_conv_layers.py ENGINE_BENCH_JSON [--reps 8]
Prints one JSON line per layer: {"case", "layer", "shape", "forward_ms", "input_grad_ms",
"weight_grad_ms", "forward_gflops", ...}.
"""
import argparse
import json
import re
import sys
import time

import torch


def least(f, reps):
    best = float("inf")
    for _ in range(reps):
        t0 = time.process_time()
        f()
        best = min(best, time.process_time() - t0)
    return best


def rates(shape, reps):
    m = re.fullmatch(r"x \[(\d+),(\d+),(\d+),(\d+)\] w \[(\d+),(\d+),(\d+),(\d+)\] stride (\d+)", shape)
    if not m:
        raise ValueError(f"torch_conv_layers: cannot parse layer shape '{shape}'")
    N, C, H, W, O, _, kh, kw, s = map(int, m.groups())
    p = kh // 2
    Ho, Wo = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
    g = torch.Generator().manual_seed(5)
    x = torch.rand(N, C, H, W, generator=g) * 2 - 1
    w = torch.rand(O, C, kh, kw, generator=g) * 0.2 - 0.1
    dy = torch.rand(N, O, Ho, Wo, generator=g) * 2 - 1
    conv = torch.nn.functional.conv2d

    def forward():
        with torch.no_grad():
            conv(x, w, None, s, p)

    wr = w.clone().requires_grad_()

    def with_dw():
        conv(x, wr, None, s, p).backward(dy)
        wr.grad = None

    xr = x.clone().requires_grad_()

    def with_dx():
        conv(xr, wr, None, s, p).backward(dy)
        wr.grad = None
        xr.grad = None

    fwd = least(forward, reps)
    tw = least(with_dw, reps)
    tx = least(with_dx, reps)
    dw, dx = max(tw - fwd, 1e-9), max(tx - tw, 1e-9)
    flop = 2.0 * N * O * C * kh * kw * Ho * Wo
    return {"forward_ms": fwd * 1e3, "input_grad_ms": dx * 1e3, "weight_grad_ms": dw * 1e3,
            "forward_gflops": flop / fwd / 1e9, "input_grad_gflops": flop / dx / 1e9,
            "weight_grad_gflops": flop / dw / 1e9}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("engine_json", help="the JSON line of `mtl bench --json` (build/bench/mtl_t1.json)")
    ap.add_argument("--reps", type=int, default=8)
    a = ap.parse_args()
    torch.set_num_threads(1)
    try:
        bench = json.load(open(a.engine_json))
    except (OSError, ValueError) as e:
        sys.exit(f"torch_conv_layers: cannot read {a.engine_json}: {e}")
    for case, r in bench.get("resnet18", {}).items():
        for layer in r.get("conv_layers", []):
            row = {"case": case, "layer": layer["layer"], "shape": layer["shape"], "count": layer["count"]}
            row.update({k: round(v, 4) for k, v in rates(layer["shape"], a.reps).items()})
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
