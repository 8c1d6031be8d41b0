#!/bin/sh
# Data-parallel training against one process (issue 15): 200 optimizer steps of MGDA-UB
# (MultiLeNet) and Chebyshev-AL (its default model, MDMTN) on MultiMNIST, batch 256,
# with N = 1 (no mpirun), 2 and 4 ranks (oversubscribed on this 2-core machine);
# every step's losses (--steps-csv) and the final test accuracy compared with N = 1.
#   usage: apps/experiments/dist_agreement.sh [OUT]   (default runs/dist-agreement)
set -e
OUT=${1:-runs/dist-agreement}
MTL=${MTL:-build/mtl}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$OUT"
COMMON="--data-dir data --test-limit 10000 --batch 256 --threads 1 --force --quiet --json"
MGDA="--method mgda-ub --train-limit 12800 --epochs 4"                       # 4 x 50 steps
CHEB="--method chebyshev-al --train-limit 13800 --val 1000 --search-iters 1 --retrain-iters 1 --epochs-per-iter 2"
for m in mgda-ub chebyshev-al; do
  if [ $m = mgda-ub ]; then FLAGS=$MGDA; else FLAGS=$CHEB; fi
  for n in 1 2 4; do
    if [ $n = 1 ]; then L=""; else L="mpirun -np $n --oversubscribe"; fi
    $L $MTL train $COMMON $FLAGS --out "$OUT/$m-n$n" --steps-csv "$OUT/$m-n$n.steps.csv" | tail -1 > "$OUT/$m-n$n.json"
  done
done
python3 - "$OUT" <<'PY'
import csv, json, sys
out = sys.argv[1]
def steps(p):
    return list(csv.DictReader(open(p)))
print("method        N  steps  max|dL| per step  mean|dL|   max|d alpha|  final test acc (per task)  vs N=1")
for m in ["mgda-ub", "chebyshev-al"]:
    ref = steps(f"{out}/{m}-n1.steps.csv")
    ref_acc = json.load(open(f"{out}/{m}-n1.json"))["test_acc"]
    for n in [1, 2, 4]:
        s = steps(f"{out}/{m}-n{n}.steps.csv")
        assert len(s) == len(ref), (m, n, len(s), len(ref))
        dl = [abs(float(a[k]) - float(b[k])) for a, b in zip(ref, s) for k in a if k.startswith("loss_")]
        dw = [abs(float(a[k]) - float(b[k])) for a, b in zip(ref, s) for k in a if k.startswith("weight_")]
        acc = json.load(open(f"{out}/{m}-n{n}.json"))["test_acc"]
        print(f"{m:12s} {n:2d} {len(s):6d}  {max(dl):.3e}         {sum(dl)/len(dl):.3e}  {max(dw):.3e}     "
              f"{' '.join(f'{v:.4f}' for v in acc.values())}   "
              f"{' '.join(f'{acc[k]-ref_acc[k]:+.4f}' for k in acc)}")
PY
