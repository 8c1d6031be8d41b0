#!/usr/bin/env bash
# `make bench`: this engine and the PyTorch references (shared/bench/torch_multimnist.py
# for the papers' networks, apps/experiments/torch_resnet18.py for ResNet-18, and
# apps/experiments/torch_conv_layers.py for its convolutions one by one) on the
# same networks and steps, side by side in one run, with the ratios.
# Usage: apps/bench.sh [DATA_DIR]   (needs build/mtl, python3-torch, python3-numpy)
set -euo pipefail
DATA=${1:-data}
TORCH=${TORCH_BENCH:-../shared/bench/torch_multimnist.py}
OUT=build/bench
mkdir -p "$OUT"
CORES=$(nproc)

for t in 1 "$CORES"; do
  echo "== mtl bench, $t thread(s)" >&2
  build/mtl bench --data-dir "$DATA" --threads "$t" --json | tail -n 1 > "$OUT/mtl_t$t.json"
  cat "$OUT/mtl_t$t.json"
done

if [ ! -f "$TORCH" ]; then
  echo "bench: $TORCH not found: PyTorch comparison skipped" >&2
  exit 0
fi
: > "$OUT/torch.jsonl"
for m in uniform mgda-ub chebyshev-al; do
  for t in 1 "$CORES"; do
    echo "== torch $m, $t thread(s)" >&2
    # two epochs over 10,240 images; the second (warm) epoch is the measurement
    /usr/bin/python3 "$TORCH" --mnist "$DATA/mnist" --method "$m" --threads "$t" --epochs 2 \
      --train-limit 10240 | tail -n 1 | tee -a "$OUT/torch.jsonl"
  done
done

# PyTorch inference on the same MultiLeNet (the reference script's classes), eval mode, no grad.
for t in 1 "$CORES"; do
  /usr/bin/python3 - "$TORCH" "$t" <<'PY' | tee -a "$OUT/torch.jsonl"
import importlib.util, json, sys, time
import torch
spec = importlib.util.spec_from_file_location("ref", sys.argv[1]); ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
torch.set_num_threads(int(sys.argv[2])); torch.manual_seed(0)
trunk, heads = ref.Trunk().eval(), [ref.Head().eval(), ref.Head().eval()]
def infer(x):
    z = trunk(x)
    return [h(z) for h in heads]
with torch.no_grad():
    one, batch = torch.randn(1, 1, 28, 28), torch.randn(256, 1, 28, 28)
    for _ in range(200): infer(one)
    t0 = time.perf_counter(); n = 2000
    for _ in range(n): infer(one)
    lat = (time.perf_counter() - t0) / n * 1e6
    for _ in range(5): infer(batch)
    t0 = time.perf_counter(); reps = 40
    for _ in range(reps): infer(batch)
    tput = reps * 256 / (time.perf_counter() - t0)
print(json.dumps({"method": "inference", "threads": int(sys.argv[2]), "batch1_latency_us": round(lat, 1),
                  "batch256_images_per_s": round(tput, 1)}))
PY
done

# ResNet-18 in PyTorch, the same layers and steps (apps/experiments/torch_resnet18.py):
# both inputs, K = 2 and 40, uniform and MGDA-UB, 1 and all threads; one line each into $1.
RTORCH=apps/experiments/torch_resnet18.py
torch_resnet_rows() {
  : > "$1"
  local spec K m t
  for spec in "1 56 16 6" "3 64 32 4"; do
    set -- "$1" $spec
    for K in 2 40; do
      for m in uniform mgda-ub; do
        for t in 1 "$CORES"; do
          echo "== torch resnet18-w$4 ${3}x${3}x$2 K=$K $m, $t thread(s)" >&2
          /usr/bin/python3 "$RTORCH" --channels "$2" --image-size "$3" --width "$4" --tasks "$K" --method "$m" \
            --threads "$t" --warmup 2 --steps "$5" | tail -n 1 | tee -a "$1"
        done
      done
    done
  done
}
torch_resnet_rows "$OUT/torch_resnet.jsonl"
# Peak resident memory of a ResNet-18 K = 40 run, each in its own process.
build/mtl scale --data-dir "$DATA" --tasks 40 --methods uniform --steps 3 --warmup 1 --threads 1 --json \
  | tail -n 1 > "$OUT/mtl_scale_k40.json"
/usr/bin/python3 "$RTORCH" --tasks 40 --method uniform --threads 1 --steps 3 | tail -n 1 > "$OUT/torch_k40.json"
# The same ResNet-18 convolutions one by one in PyTorch, timed as the engine's conv_layers rows (1 thread).
echo "== torch ResNet-18 conv layers, 1 thread" >&2
/usr/bin/python3 apps/experiments/torch_conv_layers.py "$OUT/mtl_t1.json" > "$OUT/torch_conv_layers.jsonl"

# The ResNet-18 training rows again, both sides, in further rounds minutes
# apart (BENCH_ROUNDS in all, 3 by default). On a shared machine a row's rate
# moves by up to a third from one minute to the next, and the two sides are
# timed at different moments; the summary takes each side's fastest round, as
# the conv_layers rows and the sgemm reference take the least time of several
# (other jobs only ever add time), and prints every round's ratio beside it.
ROUNDS=${BENCH_ROUNDS:-3}
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || { echo "bench: BENCH_ROUNDS must be a whole number in 1..99, got '$ROUNDS'" >&2; exit 2; }
for r in $(seq 2 "$ROUNDS"); do
  for t in 1 "$CORES"; do
    echo "== mtl bench --resnet-rows-only, round $r, $t thread(s)" >&2
    build/mtl bench --resnet-rows-only --threads "$t" | tail -n 1 > "$OUT/mtl_resnet_r${r}_t$t.json"
  done
  torch_resnet_rows "$OUT/torch_resnet_r$r.jsonl"
done

/usr/bin/python3 - "$OUT" "$CORES" "$ROUNDS" <<'PY'
import json, statistics, sys
out, cores, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
mtl = {t: json.load(open(f"{out}/mtl_t{t}.json")) for t in ("1", cores)}
torch = {}
torch_inf = []
for line in open(f"{out}/torch.jsonl"):
    r = json.loads(line)
    if r["method"] == "inference":
        torch_inf.append(r)
        continue
    key = r["method"]
    torch[key] = max(torch.get(key, 0), r["train_samples_per_s"])  # PyTorch's better thread count
best = lambda k: max(m["train_samples_per_s"][k] for m in mtl.values() if isinstance(m["train_samples_per_s"].get(k), (int, float)))
rows = [("uniform", "multilenet_uniform"), ("mgda-ub", "multilenet_mgda_ub"), ("chebyshev-al", "mdmtn_chebyshev_al")]
summary = {}
for tm, key in rows:
    try:
        summary[f"{tm}_speedup_vs_torch"] = round(best(key) / torch[tm], 2)
    except (KeyError, ValueError):
        summary[f"{tm}_speedup_vs_torch"] = None
m2 = mtl[cores]
summary["mgda_ub_step_over_uniform"] = round(m2["step_cost_ratio"]["mgda_ub_over_uniform"], 3)
summary["threads_scaling_uniform"] = round(mtl[cores]["train_samples_per_s"]["multilenet_uniform"] /
                                           mtl["1"]["train_samples_per_s"]["multilenet_uniform"], 2)
summary["batch1_latency_us"] = round(min(m["inference"]["batch1_latency_us"] for m in mtl.values()), 1)
summary["batch256_images_per_s"] = round(max(m["inference"]["batch256_images_per_s"] for m in mtl.values()))
summary["peak_rss_mb"] = max(m["peak_rss_mb"] for m in mtl.values())
if torch_inf:
    t_lat = min(r["batch1_latency_us"] for r in torch_inf)
    t_tput = max(r["batch256_images_per_s"] for r in torch_inf)
    summary["torch_batch1_latency_us"] = t_lat
    summary["torch_batch256_images_per_s"] = t_tput
    summary["batch1_latency_fraction_of_torch"] = round(summary["batch1_latency_us"] / t_lat, 3)
    summary["batch256_throughput_vs_torch"] = round(summary["batch256_images_per_s"] / t_tput, 2)
summary["torch_train_samples_per_s"] = torch

# ResNet-18: each side at its better thread count; the engine's FLOP rate against sgemm's at 1 thread.
# Rounds: round 1 is the full bench above, rounds 2.. the rows alone (mtl_resnet_r*, torch_resnet_r*).
eng_rounds = [mtl] + [{t: json.load(open(f"{out}/mtl_resnet_r{r}_t{t}.json")) for t in ("1", cores)}
                      for r in range(2, rounds + 1)]
tor_rounds = [[json.loads(l) for l in open(f"{out}/torch_resnet.jsonl")]] + \
             [[json.loads(l) for l in open(f"{out}/torch_resnet_r{r}.jsonl")] for r in range(2, rounds + 1)]
cases = {"56x56x1_w16": (1, 56, 16), "64x64x3_w32": (3, 64, 32)}
resnet, lines = {}, []
for name, (c, size, w) in cases.items():
    if not all("resnet18" in m and name in m["resnet18"] for m in mtl.values()):
        continue
    for row in mtl["1"]["resnet18"][name]["rows"]:
        K, meth = row["tasks"], row["method"]
        # per round: the engine's rate at each thread count, PyTorch's lines of this row
        eng = [{t: next(r for r in er[t]["resnet18"][name]["rows"] if r["tasks"] == K and r["method"] == meth)
                for t in er} for er in eng_rounds]
        tor = [[r for r in tr if r["input"] == [c, size, size] and r["tasks"] == K and r["method"] == meth]
               for tr in tor_rounds]
        if not all(tor):
            continue
        best_e = [max(e.values(), key=lambda r: r["samples_per_s"]) for e in eng]  # each round's better thread count
        best_t = [max(t, key=lambda r: r["train_samples_per_s"]) for t in tor]
        per_round = [round(e["samples_per_s"] / t["train_samples_per_s"], 2) for e, t in zip(best_e, best_t)]
        e_all = max(((t, e[t]) for e in eng for t in e), key=lambda p: p[1]["samples_per_s"])
        t_all = max(best_t, key=lambda r: r["train_samples_per_s"])
        key = f"{name}_K{K}_{meth}"
        t1 = [r for r in tor[0] if r["threads"] == 1]
        resnet[key] = {"engine_samples_per_s": round(e_all[1]["samples_per_s"], 1), "engine_threads": int(e_all[0]),
                       "torch_samples_per_s": t_all["train_samples_per_s"], "torch_threads": t_all["threads"],
                       # each side's fastest round at its better thread count
                       "speedup_vs_torch": round(e_all[1]["samples_per_s"] / t_all["train_samples_per_s"], 2),
                       "speedup_vs_torch_each_round": per_round,
                       "engine_samples_per_s_each_round": [round(e["samples_per_s"], 1) for e in best_e],
                       "torch_samples_per_s_each_round": [t["train_samples_per_s"] for t in best_t],
                       # by CPU time on both sides (the wall-clock fraction is eng["1"]["fraction_of_sgemm"])
                       "fraction_of_sgemm_1_thread": round(eng[0]["1"]["fraction_of_sgemm_cpu"], 3),
                       # process CPU seconds per step at 1 thread: barely moved by other jobs on the machine
                       "cpu_s_1_thread": {"engine": round(eng[0]["1"]["cpu_s"], 4),
                                          "torch": t1[0]["cpu_s"] if t1 else None}}
        lines.append(f"{key:34s} engine {e_all[1]['samples_per_s']:7.1f}/s ({e_all[0]} thr)  torch "
                     f"{t_all['train_samples_per_s']:7.1f}/s ({t_all['threads']} thr)  x{resnet[key]['speedup_vs_torch']:.2f}"
                     f"  rounds {' '.join(f'x{v:.2f}' for v in per_round)} (median x{statistics.median(per_round):.2f})"
                     f"  sgemm fraction at 1 thread (CPU time) {eng[0]['1']['fraction_of_sgemm_cpu']:.2f}")
if resnet:
    summary["resnet18"] = resnet
    try:
        summary["resnet18_k40_peak_rss_mb"] = {"engine": json.load(open(f"{out}/mtl_scale_k40.json")).get("peak_rss_mb"),
                                               "torch": json.load(open(f"{out}/torch_k40.json")).get("peak_rss_mb")}
    except (OSError, ValueError):
        pass
    print("\n".join(lines), file=sys.stderr)

# Per convolution and pass, 1 thread: the engine's rate over PyTorch's (> 1: the engine is faster),
# and per case the convolutions' total time in a training step (count x passes; the stem's input
# gradient left out: training never asks for it).
try:
    tl = [json.loads(l) for l in open(f"{out}/torch_conv_layers.jsonl")]
except OSError:
    tl = []
passes = ("forward", "input_grad", "weight_grad")
conv_cmp, lines = {}, []
for case, r in mtl["1"].get("resnet18", {}).items():
    rows, tot = [], {"engine_ms": 0.0, "torch_ms": 0.0}
    for l in r.get("conv_layers", []):
        t = next((x for x in tl if x["case"] == case and x["shape"] == l["shape"]), None)
        if not t:
            continue
        ratio = {p: round(l[f"{p}_gflops"] / t[f"{p}_gflops"], 2) for p in passes}
        rows.append({"layer": l["layer"], "shape": l["shape"], "engine_kernels": l["kernels"],
                     "engine_over_torch_rate": ratio})
        for p in passes:
            if l["layer"] == "stem" and p == "input_grad":
                continue
            tot["engine_ms"] += l["count"] * t[f"{p}_ms"] * t[f"{p}_gflops"] / l[f"{p}_gflops"]
            tot["torch_ms"] += l["count"] * t[f"{p}_ms"]
        lines.append(f"{case} {l['layer']:26s} engine/torch rate  fwd {ratio['forward']:.2f}  "
                     f"dx {ratio['input_grad']:.2f}  dW {ratio['weight_grad']:.2f}   ({l['kernels']})")
    if rows:
        conv_cmp[case] = {"layers": rows, "step_conv_ms_1_thread": {k: round(v, 1) for k, v in tot.items()}}
        lines.append(f"{case} all convolutions of a step, 1 thread: engine {tot['engine_ms']:.1f} ms, "
                     f"torch {tot['torch_ms']:.1f} ms")
if conv_cmp:
    summary["resnet18_conv_layers_vs_torch"] = conv_cmp
    print("\n".join(lines), file=sys.stderr)
print(json.dumps({"bench_summary": summary}))
PY
