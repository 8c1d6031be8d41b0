#!/usr/bin/env bash
# Time per training step at K tasks (the MNIST grid of `mtl scale`, ResNet-18
# by default) for every method of mtl train, the Gram-matrix methods in both
# gradient modes, all in one round-robin run so that every ratio to uniform is
# taken side by side (apps/experiments/scaling.h). Writes OUT/scale.txt (the
# table as printed) and OUT/scale.json, then prints which methods stay within
# 1.25x of uniform (process CPU time per step: at --threads 1 it barely moves
# when other jobs share the machine; wall time is listed beside it).
# Usage: apps/experiments/gram_scale.sh OUT [K] [MTL_BINARY] [extra mtl scale flags...]
#   e.g. apps/experiments/gram_scale.sh runs/gram-scale 40
set -euo pipefail
OUT=$1 K=${2:-40} MTL=${3:-build/mtl}
shift $(( $# < 3 ? $# : 3 ))
mkdir -p "$OUT"
METHODS=uniform,uncertainty,gradnorm,dwa,rlw,famo,stch,mgda-ub,mgda,aligned-mtl-ub,aligned-mtl
for m in pcgrad cagrad imtl-g nash-mtl upgrad; do METHODS=$METHODS,$m:representation,$m:parameters; done
"$MTL" scale --tasks "$K" --methods "$METHODS" --threads 1 --json "$@" | tee "$OUT/scale.txt" | grep -v '^{' 
tail -n 1 "$OUT/scale.txt" > "$OUT/scale.json"
/usr/bin/python3 - "$OUT/scale.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(f"\nK = {j['tasks'][0]}, {j['model']}, batch {j['batch']}, {j['timed_steps']} timed steps, threads {j['threads']}")
print(f"{'method':<30} {'cpu x uniform':>13} {'wall x uniform':>14}  within 1.25x (cpu)")
for r in j["rows"]:
    if r["method"] == "uniform":
        continue
    name = r["method"] if ":" in r["method"] else r["method"] + (
        ":representation" if r["method"] in ("mgda-ub", "aligned-mtl-ub") else
        ":parameters" if r["method"] in ("mgda", "aligned-mtl") else "")
    ok = "yes" if r["cpu_ratio_to_uniform"] <= 1.25 else "no"
    print(f"{name:<30} {r['cpu_ratio_to_uniform']:>13.2f} {r['ratio_to_uniform']:>14.2f}  {ok}")
PY
