#!/usr/bin/env bash
# Many-task benchmark on the MNIST grid (issue "Many tasks that work"): per K,
#   mean     uniform weights 1/K       (--method fixed --weights 1/K,...)
#   sum      the plain sum of losses   (--method uniform)
#   mgda-ub  MGDA-UB                   (--solver $SOLVER)
#   mgda     exact MGDA, for K <= MGDA_MAX_K (one trunk backward per task)
# and, for the causes of MGDA-UB's loss at many tasks, the variants
#   mgda-ub-fw (the paper's Frank-Wolfe solver), mgda-ub-loss+ and mgda-ub-l2
#   (gradient normalisations of the MGDA code), mgda-ub-own (each head on its
#   own loss, the paper's Algorithm 2, instead of alpha_t L_t) and mgda-ub-hmean
#   (heads on L_t / K, the head rates of `mean`: only the trunk's direction differs).
# with the same epochs and data; each method's learning rate is chosen from
# LRS on a validation split (seed 0, best mean validation accuracy over the
# epochs), then SEEDS are trained at that lr. Reported per (K, method): mean
# per-task test accuracy of the epoch selected on validation (mean and spread
# over seeds), time per training step, and at K = STL_K, Delta_m% against
# single-task networks (LibMTL's definition: the mean over tasks of
# (acc_t - acc_stl_t) / acc_stl_t, in %). A single-task network for task t is
# the same model trained with weights e_t (--method fixed): its trunk sees only
# task t; its lr is chosen on task 0's run and reused for every task.
# Every run is one `mtl train --threads 1` at a time; finished runs are skipped
# when the script is rerun, so it can be stopped and resumed.
#
# Usage: apps/experiments/many_tasks.sh OUT
# Environment (defaults in brackets):
#   KS [2 9 16 40]  METHODS [mean sum mgda-ub mgda]  LRS [0.01 0.03 0.1]  SEEDS [0 1 2]
#   EPOCHS [5]  BATCH [64]  MODEL [resnet18-w8]  TRAIN_LIMIT [10000]  VAL [2000]  TEST_LIMIT [2000]
#   SOLVER [wolfe]  MGDA_MAX_K [9]  STL_K [9]  OPTIMIZER [sgd: momentum 0.9; or adam]
#   TASKS [task names A,B,... instead of the K rule: one run set, K = their number]
#   EXTRA [extra mtl train flags]  MTL [build/mtl]
# KS=" " runs nothing and prints the summary of what OUT holds; METHODS=" " with
# STL_K = K trains only the single-task networks.
set -euo pipefail
OUT=$1
KS=${KS:-2 9 16 40} METHODS=${METHODS:-mean sum mgda-ub mgda} LRS=${LRS:-0.01 0.03 0.1} SEEDS=${SEEDS:-0 1 2}
EPOCHS=${EPOCHS:-5} BATCH=${BATCH:-64} MODEL=${MODEL:-resnet18-w8} TRAIN_LIMIT=${TRAIN_LIMIT:-10000}
VAL=${VAL:-2000} TEST_LIMIT=${TEST_LIMIT:-2000} SOLVER=${SOLVER:-wolfe} MGDA_MAX_K=${MGDA_MAX_K:-9}
STL_K=${STL_K:-9} OPTIMIZER=${OPTIMIZER:-sgd} TASKS=${TASKS:-} EXTRA=${EXTRA:-} MTL=${MTL:-build/mtl}
if [ -n "$TASKS" ]; then KS=$(echo "$TASKS" | tr ',' '\n' | wc -l); fi
OPT_FLAGS="--optimizer $OPTIMIZER"
if [ "$OPTIMIZER" = sgd ]; then OPT_FLAGS="$OPT_FLAGS --momentum 0.9"; fi
mkdir -p "$OUT"

weights() {  # weights K [HOT]: 1/K each, or e_HOT
  /usr/bin/python3 -c "import sys; K=int(sys.argv[1]); h=int(sys.argv[2]) if len(sys.argv)>2 else -1; \
print(','.join(repr(1.0/K) if h<0 else ('1' if t==h else '0') for t in range(K)))" "$@"
}
method_flags() {  # method_flags METHOD K [HOT]
  case $1 in
    mean) echo "--method fixed --weights $(weights "$2")" ;;
    sum) echo "--method uniform" ;;
    mgda-ub | mgda) echo "--method $1 --solver $SOLVER" ;;
    mgda-ub-fw) echo "--method mgda-ub --solver frank-wolfe" ;;         # the paper's solver, 250 iterations
    mgda-ub-loss+) echo "--method mgda-ub --solver $SOLVER --normalization loss+" ;;  # the MGDA code's CelebA setting
    mgda-ub-l2) echo "--method mgda-ub --solver $SOLVER --normalization l2" ;;
    mgda-ub-own) echo "--method mgda-ub --solver $SOLVER --heads own" ;;
    mgda-ub-hmean) echo "--method mgda-ub --solver $SOLVER --heads mean" ;;
    stl) echo "--method fixed --weights $(weights "$2" "$3")" ;;
    *) echo "many_tasks.sh: unknown method '$1'" >&2; exit 2 ;;
  esac
}
run() {  # run DIR LR SEED FLAGS...: one training run, its JSON in DIR/done.json
  local dir=$1 lr=$2 seed=$3; shift 3
  [ -f "$dir/done.json" ] && return 0
  # shellcheck disable=SC2086
  "$MTL" train --dataset mnist-grid --model "$MODEL" --epochs "$EPOCHS" --batch "$BATCH" --lr "$lr" \
    $OPT_FLAGS --train-limit "$TRAIN_LIMIT" --val "$VAL" --test-limit "$TEST_LIMIT" \
    --seed "$seed" --threads 1 --out "$dir" --force --quiet --json "$@" $EXTRA | tail -n 1 > "$dir.json"
  mv "$dir.json" "$dir/done.json"
}
best_lr() {  # best_lr PREFIX: the lr of PREFIX-lr*-s0 with the best mean validation accuracy over epochs
  /usr/bin/python3 - "$1" $LRS <<'PY'
import csv, sys
prefix, lrs = sys.argv[1], sys.argv[2:]
def score(lr):
    rows = list(csv.DictReader(open(f"{prefix}-lr{lr}-s0/metrics.csv")))
    return max(sum(float(r[k]) for k in r if k.startswith("val_acc_")) /
               sum(1 for k in r if k.startswith("val_acc_")) for r in rows)
print(max(lrs, key=score))
PY
}

for K in $KS; do
  TASK_FLAG=$K
  if [ -n "$TASKS" ]; then TASK_FLAG=$TASKS; fi
  for m in $METHODS; do
    [ "$m" = mgda ] && [ "$K" -gt "$MGDA_MAX_K" ] && continue
    for lr in $LRS; do run "$OUT/K$K-$m-lr$lr-s0" "$lr" 0 --tasks "$TASK_FLAG" $(method_flags "$m" "$K"); done
    lr=$(best_lr "$OUT/K$K-$m")
    echo "$lr" > "$OUT/K$K-$m.lr"
    for seed in $SEEDS; do run "$OUT/K$K-$m-lr$lr-s$seed" "$lr" "$seed" --tasks "$TASK_FLAG" $(method_flags "$m" "$K"); done
  done
  if [ "$K" = "$STL_K" ]; then
    for lr in $LRS; do run "$OUT/K$K-stl0-lr$lr-s0" "$lr" 0 --tasks "$TASK_FLAG" $(method_flags stl "$K" 0); done
    lr=$(best_lr "$OUT/K$K-stl0")
    echo "$lr" > "$OUT/K$K-stl.lr"
    for seed in $SEEDS; do
      for ((t = 0; t < K; t++)); do run "$OUT/K$K-stl$t-lr$lr-s$seed" "$lr" "$seed" --tasks "$TASK_FLAG" $(method_flags stl "$K" "$t"); done
    done
  fi
done

/usr/bin/python3 - "$OUT" "$STL_K" "$BATCH" "$METHODS" $SEEDS <<'PY'
import csv, glob, json, os, re, statistics as st, sys
out, stl_k, batch, methods, seeds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(), sys.argv[5:]
def load(K, name):  # the selected lr, the finished runs' results and their directories
    lrf = f"{out}/K{K}-{name}.lr"
    if not os.path.exists(lrf): return None, [], []
    lr = open(lrf).read().strip()
    dirs = [d for s in seeds for d in [f"{out}/K{K}-{name}-lr{lr}-s{s}"] if os.path.exists(f"{d}/done.json")]
    return lr, [json.load(open(f"{d}/done.json")) for d in dirs], dirs
Ks = sorted({int(re.match(r".*/K(\d+)-", p).group(1)) for p in glob.glob(f"{out}/K*-*.lr")})
stl = {}
if stl_k in Ks:
    lr = open(f"{out}/K{stl_k}-stl.lr").read().strip() if os.path.exists(f"{out}/K{stl_k}-stl.lr") else None
    for t in range(stl_k):
        accs = []
        for s in seeds:
            p = f"{out}/K{stl_k}-stl{t}-lr{lr}-s{s}/done.json"
            if os.path.exists(p):
                accs.append(list(json.load(open(p))["best_test_acc"].values())[t])
        if accs: stl[t] = st.mean(accs)
# Where the weight goes (second table): per task family (the task name up to its first "_":
# digit, even, ge5), at each run's selected epoch, mean over seeds: test accuracy and the
# family's share of the weights (the epoch's mean weight_* columns, normalised to sum 1); for
# the MGDA methods the solver's mean iterations per step and the largest relative duality gap.
def families(runs, dirs):
    fam_acc, fam_w, iters, gaps = {}, {}, [], []
    for run, d in zip(runs, dirs):
        rows = list(csv.DictReader(open(f"{d}/metrics.csv")))
        r = rows[run["best_epoch"] - 1]
        w = {k[len("weight_"):]: float(v) for k, v in r.items() if k.startswith("weight_") and not k.startswith("weight_std_")}
        total = sum(w.values())
        for t in w:
            f = t.split("_")[0]
            fam_acc.setdefault(f, []).append(float(r[f"test_acc_{t}"]))
            fam_w.setdefault(f, []).append(w[t] / total / len(runs))
        if "solver_iterations" in r:
            iters.append(st.mean(float(x["solver_iterations"]) for x in rows))
            gaps.append(max(float(x["solver_gap_max"]) for x in rows))
    fams = ", ".join(f"{f} ({len(fam_acc[f]) // len(runs)}): {100 * st.mean(fam_acc[f]):.1f}, {sum(fam_w[f]):.2f}"
                     for f in fam_acc)
    return f"{fams} | {st.mean(iters):.1f}" if iters else f"{fams} | -", f"{max(gaps):.1e}" if gaps else "-"
print("| K | method | lr | seeds | mean per-task test acc % | worst task % | time per step (ms) | Delta_m % |")
print("|---|---|---|---|---|---|---|---|")
second = ["| K | method | family (tasks): test acc %, weight share | solver iterations per step | max solver gap |",
          "|---|---|---|---|---|"]
# time per step: batch / the run's training samples per second (wall time, so a busy machine shows)
for K in Ks:
    for name in methods:
        lr, runs, dirs = load(K, name)
        if not runs: continue
        accs = [list(r["best_test_acc"].values()) for r in runs]
        means = [100 * st.mean(a) for a in accs]
        worst = min(100 * min(a) for a in accs)
        step_ms = st.mean(1000.0 * batch / r["train_samples_per_s"] for r in runs)
        dm = "-"
        if K == stl_k and len(stl) == K:
            per_seed = [100 * st.mean((a[t] - stl[t]) / stl[t] for t in range(K)) for a in accs]
            dm = f"{st.mean(per_seed):+.2f}"
        sd = st.stdev(means) if len(means) > 1 else 0.0
        print(f"| {K} | {name} | {lr} | {len(runs)} | {st.mean(means):.2f} +- {sd:.2f} | {worst:.2f} | {step_ms:.1f} | {dm} |")
        fams_iters, gap = families(runs, dirs)
        second.append(f"| {K} | {name} | {fams_iters} | {gap} |")
if stl:
    print(f"\nsingle-task networks at K = {stl_k}: mean test acc {100 * st.mean(stl.values()):.2f}% over {len(stl)} tasks")
print("\n" + "\n".join(second))
PY
