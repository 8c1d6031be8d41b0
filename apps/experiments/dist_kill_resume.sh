#!/bin/bash
# The kill-and-resume trial of data-parallel training (issue 15): MGDA-UB on 2 ranks,
# rank 1 killed (SIGKILL) during epoch 3; how long until the job is gone, its exit
# status and message; then --resume from the last checkpoint with 2 ranks and with 1,
# compared with uninterrupted runs on 2 ranks and on one process.
#   usage: apps/experiments/dist_kill_resume.sh [OUT]   (default runs/dist-kill)
set -u
OUT=${1:-runs/dist-kill}
MTL=${MTL:-build/mtl}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$OUT"; mkdir -p "$OUT"
COMMON="--data-dir data --train-limit 6400 --test-limit 2000 --batch 256 --threads 1 --method mgda-ub --epochs 4 --quiet --json"
$MTL train $COMMON --out "$OUT/whole" > "$OUT/whole.out"
mpirun -np 2 --oversubscribe $MTL train $COMMON --out "$OUT/whole-n2" > "$OUT/whole-n2.out"
mpirun -np 2 --oversubscribe $MTL train $COMMON --out "$OUT/killed" > "$OUT/killed.out" 2> "$OUT/killed.err" &
MP=$!
# the checkpoint of epoch 2 is written right after its metrics row
while [ "$(cat "$OUT/killed/metrics.csv" 2>/dev/null | wc -l)" -lt 3 ]; do sleep 0.1; done
sleep 1
R1=""
for p in $(pgrep -P $MP); do tr '\0' '\n' < /proc/$p/environ | grep -qx OMPI_COMM_WORLD_RANK=1 && R1=$p; done
T0=$(date +%s.%N)
kill -9 "$R1"
wait $MP
RC=$?
T1=$(date +%s.%N)
echo "killed rank 1 (pid $R1) in epoch 3: mpirun exited with status $RC after $(python3 -c "print(f'{$T1 - $T0:.2f}')") s"
echo "its message:"; grep -v '^\s*$' "$OUT/killed.err" | grep -iE "rank|signal|pid|process" | head -5
echo "epochs in the killed run's metrics.csv: $(($(wc -l < "$OUT/killed/metrics.csv") - 1))"
cp -r "$OUT/killed" "$OUT/resumed-n1"
mpirun -np 2 --oversubscribe $MTL train $COMMON --resume "$OUT/killed/checkpoint.safetensors" --out "$OUT/killed" > "$OUT/resumed-n2.out"
echo "resume with 2 ranks: exit $?"
$MTL train $COMMON --resume "$OUT/resumed-n1/checkpoint.safetensors" --out "$OUT/resumed-n1" > "$OUT/resumed-n1.out"
echo "resume with 1 process: exit $?"
python3 - "$OUT" <<'PY'
import csv, sys
out = sys.argv[1]
def rows(d):
    return list(csv.DictReader(open(f"{out}/{d}/metrics.csv")))
cols = None
for d, ref in [("killed", "whole-n2"), ("killed", "whole"), ("resumed-n1", "whole"), ("resumed-n1", "whole-n2")]:
    r, w = rows(d), rows(ref)
    assert len(r) == len(w), (d, len(r))
    cols = [k for k in w[0] if k.startswith(("train_loss", "test_loss", "weight", "test_acc"))]
    worst = max(abs(float(a[k]) - float(b[k])) for a, b in zip(w, r) for k in cols)
    name = "killed on 2, resumed on 2" if d == "killed" else "killed on 2, resumed on 1"
    ref_name = "uninterrupted on 2 ranks" if ref == "whole-n2" else "uninterrupted on 1 process"
    print(f"{name} vs {ref_name}: {len(r)} epochs, max |difference| {worst:.3e}; final test acc "
          f"{[r[-1][k] for k in cols if k.startswith('test_acc')]} vs {[w[-1][k] for k in cols if k.startswith('test_acc')]}")
print("(columns compared: " + ", ".join(cols) + ")")
PY
