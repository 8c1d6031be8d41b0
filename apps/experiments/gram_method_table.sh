#!/usr/bin/env bash
# Issue 14's method table on one dataset: every method with the same recipe
# (method_table.sh's: EPOCHS epochs, SGD lr 0.05 momentum 0.9, batch 256), the
# Gram-matrix methods in both gradient modes, one JSON line per run in
# OUT/runs.jsonl; then per method the test accuracy per task (mean +- sample sd
# over the seeds, last epoch), Delta_m% against single-task (LibMTL's
# definition: the mean over tasks of the relative change of the accuracy, in %)
# and the time per step relative to uniform, measured for all methods in one
# round-robin `mtl scale` run on the same network and input shape
# (MultiLeNet, 28 x 28, batch 256; process CPU time, robust at --threads 1),
# and sum_t w_t, the last epoch's mean task weights summed (the step's scale:
# K for uniform, 1 for MGDA).
# Runs already done (OUT/NAME-sSEED/done.json) are skipped, so the script can
# be rerun after an interruption.
# Usage: apps/experiments/gram_method_table.sh DATASET "SEEDS" OUT [MTL_BINARY]
#   e.g. apps/experiments/gram_method_table.sh multimnist "0 1 2" runs/gram-table-multimnist
#        EPOCHS=3 apps/experiments/gram_method_table.sh multifashion-mnist "0 1 2" runs/t3
# TRAIN_FLAGS adds flags to every mtl train (say "--train-limit 2048" for a smoke test).
set -uo pipefail
DATASET=$1 SEEDS=$2 OUT=$3 MTL=${4:-build/mtl}
EPOCHS=${EPOCHS:-10} THREADS=${MTL_THREADS:-1} TIMING_STEPS=${TIMING_STEPS:-20} TRAIN_FLAGS=${TRAIN_FLAGS:-}
mkdir -p "$OUT"
SPECS="single-task uniform uncertainty gradnorm mgda mgda-ub aligned-mtl aligned-mtl-ub dwa rlw famo stch"
for m in pcgrad cagrad imtl-g nash-mtl upgrad; do SPECS="$SPECS $m:representation $m:parameters"; done
HAS_MODE=0
"$MTL" train --help 2>/dev/null | grep -- '--gradients' >/dev/null && HAS_MODE=1  # not grep -q: mtl's SIGPIPE would fail the pipe (pipefail)

for spec in $SPECS; do
  method=${spec%%:*} mode=""
  [[ $spec == *:* ]] && mode=${spec#*:}
  for seed in $SEEDS; do
    run="$OUT/${spec/:/-}-s$seed"
    [ -f "$run/done.json" ] && continue
    extra=()
    if [ -n "$mode" ]; then
      if [ $HAS_MODE = 0 ]; then
        [ "$mode" = parameters ] && { echo "skip $spec seed $seed: this mtl has no --gradients" >&2; continue; }
      else
        extra=(--gradients "$mode")
      fi
    fi
    if "$MTL" train --dataset "$DATASET" --method "$method" "${extra[@]}" --epochs "$EPOCHS" --lr 0.05 --batch 256 \
         --optimizer sgd --momentum 0.9 --seed "$seed" --threads "$THREADS" $TRAIN_FLAGS --out "$run" --force --quiet --json \
         > "$run.out" 2> "$run.err"; then
      tail -n 1 "$run.out" | /usr/bin/python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); j["spec"]=sys.argv[1]; print(json.dumps(j))' "$spec" > "$run/done.json"
      cat "$run/done.json" >> "$OUT/runs.jsonl"
      rm -f "$run.out" "$run.err"
    else
      echo "run $spec seed $seed failed: $(tail -n 1 "$run.err")" >&2
    fi
  done
done

# Time per step, every method side by side in one process.
if [ ! -f "$OUT/timing.json" ]; then
  methods=""
  for spec in $SPECS; do
    [ "$spec" = single-task ] && continue
    methods="$methods,$spec"
  done
  "$MTL" scale --tasks 2 --model multilenet --image-size 28 --batch 256 --steps "$TIMING_STEPS" --warmup 2 \
    --methods "${methods#,}" --threads 1 --json | tail -n 1 > "$OUT/timing.json"
fi

/usr/bin/python3 - "$OUT/runs.jsonl" "$OUT/timing.json" "$DATASET" "$EPOCHS" <<'PY'
import json, sys, statistics as st
runs, timing_path, dataset, epochs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = {}
for line in open(runs):
    r = json.loads(line)
    rows.setdefault(r["spec"], []).append(r)
try:
    t = json.load(open(timing_path))
    cpu = {r["method"]: r["cpu_ratio_to_uniform"] for r in t["rows"]}
except (OSError, ValueError):
    cpu = {}
tasks = list(next(iter(rows.values()))[0]["test_acc_percent"])
def mean_sd(v):
    return st.mean(v), (st.stdev(v) if len(v) > 1 else 0.0)
base = {t: st.mean(r["test_acc_percent"][t] for r in rows["single-task"]) for t in tasks} if "single-task" in rows else None
print(f"{dataset}, {epochs} epochs, SGD lr 0.05 momentum 0.9, batch 256; accuracy % (mean +- sample sd over seeds)")
head = (f"{'method':<16} {'gradients':<15} {'seeds':>5} " + " ".join(f"{t[:14]:>16}" for t in tasks) +
        f" {'Delta_m %':>10} {'step x uniform':>15} {'sum_t w_t':>10}")
print(head)
for spec, rs in rows.items():
    name, mode = (spec.split(":") + [""])[:2]
    if not mode:
        mode = {"mgda": "parameters", "aligned-mtl": "parameters", "mgda-ub": "representation",
                "aligned-mtl-ub": "representation"}.get(name, "-")
    cells, rel = [], []
    for t in tasks:
        m, sd = mean_sd([r["test_acc_percent"][t] for r in rs])
        cells.append(f"{m:7.2f} +- {sd:4.2f}")
        if base:
            rel.append((m - base[t]) / base[t])
    dm = f"{100 * st.mean(rel):+10.2f}" if base else f"{'-':>10}"
    c = cpu.get(spec)
    wsum = st.mean(sum(r["weight"].values()) for r in rs)  # the last epoch's mean weights: the step's scale
    print(f"{name:<16} {mode:<15} {len(rs):>5} " + " ".join(f"{x:>16}" for x in cells) + f" {dm} " +
          (f"{c:15.2f}" if c is not None else f"{'-':>15}") + f" {wsum:10.3g}")
PY
