#!/usr/bin/env bash
# Batch-1 inference latency on this machine, one run, the sides interleaved (ROUNDS rounds;
# the median of each side): the exported MultiLeNet in fp32 and in int8 (C compiled with
# ${CC:-cc} -std=c99 at -O2 and at -O3, one thread, NAME_test --time), `mtl bench`'s batch-1 latency (the
# engine, eval mode, no tape, --threads 1), and PyTorch's on the same network
# (shared/bench/torch_multimnist.py's Trunk and Head, eval mode, no_grad, one thread).
# A benchmark, not a test.
#
# Usage: apps/experiments/export_latency.sh WEIGHTS [ROUNDS]   (needs build/mtl, data/, python3-torch)
set -euo pipefail
WEIGHTS=$1
ROUNDS=${2:-3}
TORCH=${TORCH_BENCH:-}
for t in ../shared/bench/torch_multimnist.py ../../shared/bench/torch_multimnist.py; do
  [ -z "$TORCH" ] && [ -f "$t" ] && TORCH=$t
done
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for p in fp32 int8; do
  flags=""; [ $p = int8 ] && flags="--int8"
  build/mtl export --weights "$WEIGHTS" --out "$OUT/$p" --name model $flags --test-images 100 >/dev/null
  for o in O2 O3; do
    ${CC:-cc} -std=c99 -$o -Wall -Wextra -pedantic -Werror -ffp-contract=off -I"$OUT/$p" -o "$OUT/$p/run_$o" \
      "$OUT/$p/model.c" "$OUT/$p/model_test.c" -lm
  done
done
torch_latency() {
  OMP_NUM_THREADS=1 /usr/bin/python3 - "$TORCH" <<'PY'
import importlib.util, sys, time
import torch
spec = importlib.util.spec_from_file_location("ref", sys.argv[1]); ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
torch.set_num_threads(1); torch.manual_seed(0)
trunk, heads = ref.Trunk().eval(), [ref.Head().eval(), ref.Head().eval()]
with torch.no_grad():
    one = torch.randn(1, 1, 28, 28)
    for _ in range(200): z = trunk(one); [h(z) for h in heads]
    n = 2000; t0 = time.perf_counter()
    for _ in range(n):
        z = trunk(one); [h(z) for h in heads]
    print((time.perf_counter() - t0) / n * 1e6)
PY
}
: > "$OUT/times"
for r in $(seq "$ROUNDS"); do
  for p in fp32 int8; do
    for o in O2 O3; do
      us=$("$OUT/$p/run_$o" --time 200 | awk '{ print $2 / 1000 }')
      echo "c_${p}_$o $us" >> "$OUT/times"
    done
  done
  us=$(build/mtl bench --threads 1 --steps 2 --batch 64 | tail -n 1 |
       /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["inference"]["batch1_latency_us"])')
  echo "engine $us" >> "$OUT/times"
  [ -f "$TORCH" ] && echo "torch $(torch_latency)" >> "$OUT/times"
done
/usr/bin/python3 - "$OUT/times" <<'PY'
import json, statistics, sys
t = {}
for line in open(sys.argv[1]):
    k, v = line.split(); t.setdefault(k, []).append(float(v))
med = {k: round(statistics.median(v), 2) for k, v in t.items()}
out = {"batch1_latency_us_median": med, "rounds": len(t["engine"]), "all": t}
for k in ("engine", "torch"):
    if k in med:
        for c in sorted(x for x in med if x.startswith("c_")):
            out[f"{c}_speedup_vs_{k}"] = round(med[k] / med[c], 2)
print(json.dumps(out))
PY
