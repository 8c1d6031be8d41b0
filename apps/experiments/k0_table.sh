#!/usr/bin/env bash
# The Chebyshev-AL sparsity table: one run of `mtl train --method chebyshev-al` per
# (model, k_0), with the task preferences fixed at (0.8, 0.19), the reference's full
# schedule (3 search + 10 retraining outer iterations of 3 epochs) and its settings
# for the dataset and model. One JSON line per run is appended to OUT/runs.jsonl,
# then a table: test accuracy per task, group and parameter sparsity, compression.
# Runs already done (OUT/<model>-k0_<k0>/done.json) are skipped, so an interrupted
# table can be continued.
# Usage: apps/experiments/k0_table.sh DATASET "MODELS" "K0S" OUT [MTL_BINARY]
#   e.g. JOBS=2 apps/experiments/k0_table.sh multimnist "mdmtn hps" "0 1e-4 1e-3 1e-2 1e-1" runs/k0-multimnist
# Environment: JOBS runs at a time [1], each on MTL_THREADS threads [1];
#   VARIANT published | standard [published]; SEED [0].
set -euo pipefail
DATASET=$1 MODELS=$2 K0S=$3 OUT=$4 MTL=${5:-build/mtl}
export DATASET OUT MTL THREADS=${MTL_THREADS:-1} VARIANT=${VARIANT:-published} SEED=${SEED:-0}
mkdir -p "$OUT"

one_run() {  # $1 = model, $2 = k0
  local run="$OUT/$1-k0_$2"
  [ -f "$run/done.json" ] && return 0
  "$MTL" train --method chebyshev-al --dataset "$DATASET" --model "$1" --prefs "$2,0.8,0.19" \
    --al-variant "$VARIANT" --seed "$SEED" --threads "$THREADS" --out "$run" --force --quiet --json \
    | tail -n 1 > "$run.json"
  mv "$run.json" "$run/done.json"
  # one line per write, so runs finishing together do not interleave
  cat "$run/done.json" >> "$OUT/runs.jsonl"
}
export -f one_run

for m in $MODELS; do for k in $K0S; do echo "$m $k"; done; done | xargs -P "${JOBS:-1}" -L 1 bash -c 'one_run "$0" "$1"'

/usr/bin/python3 - "$OUT/runs.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows.sort(key=lambda r: (r["model"], r["variant"], r["prefs"][0]))
tasks = rows[0]["tasks"]
head = ["model", "variant", "k0"] + [f"{t} %" for t in tasks] + ["mean %", "group sp. %", "param sp. %", "compression", "min"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for r in rows:
    acc = [100 * r["test_acc"][t] for t in tasks]
    cells = [r["model"], r["variant"], f'{r["prefs"][0]:g}'] + [f"{a:.2f}" for a in acc]
    cells += [f"{sum(acc) / len(acc):.2f}", f'{r["group_sparsity"]:.1f}', f'{r["param_sparsity"]:.1f}',
              f'{r["compression"]:.2f}', f'{r["wall_s"] / 60:.0f}']
    print("| " + " | ".join(cells) + " |")
PY
