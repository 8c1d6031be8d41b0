#!/bin/bash
# Kill -9 trials of one-process training (issue 17): TRIALS runs of the same
# small MGDA-UB training, each killed with SIGKILL at a random moment (during
# an epoch or while files are being written), then continued until it finishes:
# with --resume from its checkpoint when it has one, else by rerunning the same
# command (a run killed before its first checkpoint restarts without --force),
# every continuation possibly killed again. Then per trial:
#   - no *.tmp.* file is left in the run directory;
#   - every file of the run parses: metrics.csv has one complete row per epoch,
#     checkpoint and model files load (`mtl eval` reads best.safetensors);
#   - the final weights (checkpoint.safetensors's tensors, bit for bit) equal
#     those of an uninterrupted run.
# Prints one line per trial and a summary; exits 1 if any trial failed.
#   usage: apps/experiments/kill_resume_trials.sh [OUT] [TRIALS]   (default runs/kill-trials 20)
set -u
OUT=${1:-runs/kill-trials} TRIALS=${2:-20}
MTL=${MTL:-build/mtl}
rm -rf "$OUT"; mkdir -p "$OUT"
COMMON="--data-dir data --train-limit 2048 --test-limit 1000 --batch 128 --threads 1 --method mgda-ub --epochs 4 --seed 3 --quiet"
T0=$(date +%s.%N)
$MTL train $COMMON --out "$OUT/whole" > /dev/null || { echo "the uninterrupted run failed"; exit 1; }
WHOLE_S=$(python3 -c "import time; print(time.time() - $T0)")
# the tensors of a safetensors file (header's data offsets + data), without __metadata__
weights() {
  /usr/bin/python3 - "$1" <<'PY'
import hashlib, json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
print(hashlib.sha256(json.dumps(h, sort_keys=True).encode() + b[8 + n:]).hexdigest())
PY
}
REF=$(weights "$OUT/whole/checkpoint.safetensors")
failed=0 kills=0 all_resumed=0 all_restarted=0
for ((t = 1; t <= TRIALS; t++)); do
  dir="$OUT/t$t"
  n_kill=0 attempts=0 resumed=0 restarted=0 status=""
  while :; do
    attempts=$((attempts + 1))
    if [ -f "$dir/checkpoint.safetensors" ]; then
      args=(--resume "$dir/checkpoint.safetensors")
      resumed=$((resumed + 1))
    else
      args=()
      [ $attempts -gt 1 ] && restarted=$((restarted + 1))
    fi
    $MTL train $COMMON --out "$dir" "${args[@]}" > "$dir.out" 2> "$dir.err" &
    pid=$!
    # the first two attempts are killed after a random 2-80 % of the uninterrupted run's time
    if [ $attempts -le 2 ]; then
      delay=$(python3 -c "import random; print(random.uniform(0.02, 0.8) * $WHOLE_S)")
      python3 -c "import time; time.sleep($delay)"
      kill -9 $pid 2>/dev/null
    fi
    wait $pid 2>/dev/null
    rc=$?
    [ $rc = 0 ] && break
    [ $rc = 137 ] && n_kill=$((n_kill + 1))  # killed (a kill after the exit does nothing)
    if [ $rc != 137 ]; then status="exit $rc: $(tail -n 1 "$dir.err")"; break; fi
    [ $attempts -ge 10 ] && { status="not finished after 10 attempts"; break; }
  done
  kills=$((kills + n_kill)) all_resumed=$((all_resumed + resumed)) all_restarted=$((all_restarted + restarted))
  if [ -z "$status" ]; then
    tmp=$(find "$dir" -name '*.tmp.*' | wc -l)
    rows=$(($(wc -l < "$dir/metrics.csv") - 1))
    got=$(weights "$dir/checkpoint.safetensors")
    $MTL eval --weights "$dir/best.safetensors" --data-dir data --test-limit 100 > /dev/null 2>&1 || status="model file does not load"
    [ "$tmp" != 0 ] && status="$tmp temporary files left"
    [ "$rows" != 4 ] && status="metrics.csv has $rows rows"
    [ "$got" != "$REF" ] && status="final weights differ from the uninterrupted run"
  fi
  if [ -z "$status" ]; then
    echo "trial $t: killed $n_kill time(s), resumed $resumed, restarted $restarted: ok"
  else
    echo "trial $t: killed $n_kill time(s), resumed $resumed, restarted $restarted: FAILED ($status)"
    failed=$((failed + 1))
  fi
done
echo "kill -9 trials: $TRIALS trials, $kills kills, $all_resumed resumes from a checkpoint, $all_restarted restarts without one, $failed failed (uninterrupted run ${WHOLE_S%.*} s)"
[ $failed = 0 ]
