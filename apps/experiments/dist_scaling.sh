#!/bin/bash
# Data-parallel scaling on this machine (issue 15): the MNIST grid with K = 40 tasks,
# MultiLeNet and ResNet-18, uniform and MGDA-UB; per configuration
#   1x1  one process, 1 thread       1x2  one process, 2 threads
#   2x1  mpirun -np 2, 1 thread each (MTL_DIST_PROFILE=1: waiting told apart from the allreduce)
# interleaved (ROUNDS rounds of all three), the training loop's time per step, its
# communication, and the bytes rank 0 sends per step (result.json "data_parallel").
#   usage: apps/experiments/dist_scaling.sh [OUT]   (default runs/dist-scaling; ROUNDS=2)
set -eu
OUT=${1:-runs/dist-scaling}
MTL=${MTL:-build/mtl}
ROUNDS=${ROUNDS:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$OUT"
run() {  # NAME LAUNCH THREADS FLAGS...
  local name=$1 launch=$2 threads=$3; shift 3
  MTL_DIST_PROFILE=1 $launch $MTL train --dataset mnist-grid --tasks 40 --data-dir data --test-limit 64 \
    --threads "$threads" --epochs 1 --force --quiet --json --out "$OUT/$name" "$@" | tail -1 >> "$OUT/$name.jsonl"
}
rm -f "$OUT"/*.jsonl
for r in $(seq "$ROUNDS"); do
  for method in uniform mgda-ub; do
    for cfg in 1x1 1x2 2x1; do
      case $cfg in 1x1) L=""; T=1 ;; 1x2) L=""; T=2 ;; 2x1) L="mpirun -np 2 --oversubscribe"; T=1 ;; esac
      run "multilenet-$method-$cfg" "$L" $T --model multilenet --method $method --batch 256 --train-limit 5120
      run "resnet18-$method-$cfg" "$L" $T --model resnet18 --method $method --batch 64 --train-limit 256
    done
  done
done
python3 - "$OUT" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
print("model       method   cfg  step_s (median)  vs 1x1  comm/step  wait/step  allreduce/step  floats/step  bytes sent/step")
for model, batch in [("multilenet", 256), ("resnet18", 64)]:
    for method in ["uniform", "mgda-ub"]:
        base = None
        for cfg in ["1x1", "1x2", "2x1"]:
            runs = [json.loads(l) for l in open(f"{out}/{model}-{method}-{cfg}.jsonl")]
            steps = sorted(batch / r["train_samples_per_s"] if "data_parallel" not in r else r["data_parallel"]["step_s"]
                           for r in runs)
            s = steps[len(steps) // 2]
            base = base or s
            d = runs[-1].get("data_parallel", {})
            f = lambda k: f"{d[k]*1e3:8.2f} ms" if k in d else "       -   "
            print(f"{model:11s} {method:8s} {cfg}  {s:8.4f} s       {base / s:5.2f}x  {f('comm_s_per_step')} {f('wait_s_per_step')} "
                  f"{f('gradient_allreduce_s_per_step')}   {d.get('gradient_allreduce_floats', '-'):>9}  {d.get('bytes_sent_per_step', '-')}")
PY
