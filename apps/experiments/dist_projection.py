#!/usr/bin/env python3
"""Projection of data-parallel efficiency at 8, 32 and 128 ranks (issue 15), from the
step time and message sizes dist_scaling.sh measured (its OUT directory, argument 1).

Model per step (ring allreduce, alpha = latency per message, beta = bandwidth):
  compute      C / N for a fixed global batch (strong scaling; C = the 1x1 step),
               C for a fixed batch per rank (weak scaling)
  gradient     2 (N - 1) alpha + 2 (N - 1) / N * S / beta       S = 4 bytes x floats
  mgda-ub      + the Gram allgather: log2(N) alpha + (N - 1) G / beta, G = (K^2 + K) 8 bytes
  efficiency   C / (N T) strong, C / T weak; no overlap of communication with compute.
Networks: 10 GbE (alpha 25 us, beta 1.25 GB/s) and InfiniBand HDR 100 Gb/s (2 us, 12 GB/s).
"""
import json, math, sys

out = sys.argv[1] if len(sys.argv) > 1 else "runs/dist-scaling"
K = 40
nets = {"10GbE": (25e-6, 1.25e9), "IB-100G": (2e-6, 12e9)}
print(f"{'model':10s} {'method':8s} {'net':8s} {'N':>4s}  {'strong eff':>10s}  {'weak eff':>8s}  {'comm ms':>8s}")
for model, batch in [("multilenet", 256), ("resnet18", 64)]:
    for method in ["uniform", "mgda-ub"]:
        one = [json.loads(l) for l in open(f"{out}/{model}-{method}-1x1.jsonl")]
        C = sorted(batch / r["train_samples_per_s"] for r in one)[len(one) // 2]
        two = [json.loads(l) for l in open(f"{out}/{model}-{method}-2x1.jsonl")]
        S = 4 * two[-1]["data_parallel"]["gradient_allreduce_floats"]
        G = (K * K + K) * 8 if method == "mgda-ub" else 0
        for net, (a, b) in nets.items():
            for N in [8, 32, 128]:
                comm = 2 * (N - 1) * a + 2 * (N - 1) / N * S / b
                if G:
                    comm += math.log2(N) * a + (N - 1) * G / b
                strong = C / (N * (C / N + comm))
                weak = C / (C + comm)
                print(f"{model:10s} {method:8s} {net:8s} {N:4d}  {strong:10.3f}  {weak:8.3f}  {comm * 1e3:8.2f}"
                      f"   (C = {C:.3f} s per batch of {batch}, S = {S / 1e6:.2f} MB)")
