#!/usr/bin/env bash
# The MGDA paper's MultiMNIST protocol (Sener & Koltun 2018; issue "Many tasks
# that work"): MultiLeNet, MGDA-UB, SGD lr 0.05 momentum 0.9, batch 256, 100
# epochs with the MGDA code's schedule (lr x0.85 when (epoch+1) % 10 == 0),
# 10,000 training images held out for validation, the epoch with the best mean
# validation accuracy selected, its test accuracy reported; 3 seeds; the engine
# and PyTorch (apps/experiments/torch_mgda_schedule.py, an independent
# implementation of the same recipe) side by side with the paper's 97.26 / 95.90.
# Runs one at a time at --threads 1, the engine's seeds first; a finished run
# is skipped when rerun (PART=engine or PART=torch runs one side only).
# Usage: apps/experiments/mgda_protocol.sh OUT [SEEDS] [MTL_BINARY]
#   e.g. apps/experiments/mgda_protocol.sh runs/mgda-protocol "0 1 2"
set -euo pipefail
OUT=$1 SEEDS=${2:-0 1 2} MTL=${3:-build/mtl}
EPOCHS=${EPOCHS:-100} VAL=${VAL:-10000} PART=${PART:-all}  # PART: all | engine | torch
TORCH_REF=${TORCH_REF:-/work/shared/bench/torch_multimnist.py}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
if [ "$PART" != torch ]; then  # the engine's seeds first
  for seed in $SEEDS; do
    run="$OUT/engine-s$seed"
    [ -f "$run/done.json" ] && continue
    "$MTL" train --dataset multimnist --model multilenet --method mgda-ub --epochs "$EPOCHS" --lr 0.05 --batch 256 \
      --optimizer sgd --momentum 0.9 --lr-step 10 --lr-first-step 9 --lr-gamma 0.85 --val "$VAL" --seed "$seed" \
      --threads 1 --out "$run" --force --quiet --json | tail -n 1 > "$run.json"
    mv "$run.json" "$run/done.json"
  done
fi
if [ "$PART" != engine ]; then
  for seed in $SEEDS; do
    run="$OUT/torch-s$seed"
    [ -f "$run.done.json" ] && continue
    /usr/bin/python3 "$HERE/torch_mgda_schedule.py" --mnist data/mnist --epochs "$EPOCHS" --val "$VAL" --seed "$seed" \
      --threads 1 --reference "$TORCH_REF" > "$run.log"
    tail -n 1 "$run.log" > "$run.tmp" && mv "$run.tmp" "$run.done.json"
  done
fi
[ "$PART" = all ] || exit 0
/usr/bin/python3 - "$OUT" $SEEDS <<'PY'
import json, sys, statistics as st
out, seeds = sys.argv[1], sys.argv[2:]
def row(name, accs, epochs):
    l = [100 * a[0] for a in accs]; r = [100 * a[1] for a in accs]
    sd = lambda v: st.stdev(v) if len(v) > 1 else 0.0
    print(f"| {name} | {len(accs)} | {st.mean(l):.2f} +- {sd(l):.2f} | {st.mean(r):.2f} +- {sd(r):.2f} | "
          f"{', '.join(map(str, epochs))} |")
print("| implementation | seeds | left digit test acc % | right digit test acc % | selected epochs |")
print("|---|---|---|---|---|")
print("| paper (Sener & Koltun 2018, MGDA-UB) | - | 97.26 | 95.90 | - |")
eng = [json.load(open(f"{out}/engine-s{s}/done.json")) for s in seeds]
row("mtl-engine", [list(e["best_test_acc"].values()) for e in eng], [e["best_epoch"] for e in eng])
tor = [json.load(open(f"{out}/torch-s{s}.done.json")) for s in seeds]
row("PyTorch", [t["best_test_acc"] for t in tor], [t["selected_epoch"] for t in tor])
PY
