#!/usr/bin/env bash
# The figures of the C export (issue 12), one command each, printed as they come:
#   MultiLeNet (MGDA_WEIGHTS): fp32 and int8 against the engine on the 10,000 test images;
#     the int8 and fp32 builds on a Cortex-M4 under QEMU against the host on 100 images
#     (bit-identical?), arm-none-eabi-size, stack, instructions per inference;
#   MDMTN (SPARSE_WEIGHTS, a Chebyshev-AL model): dense (--no-prune) against pruned exports,
#     parameters, MACs, const bytes, arena bytes, accuracy against the engine, and the
#     Cortex-M4 instructions per inference of each.
# Host latency is apps/experiments/export_latency.sh (a separate, interleaved run).
#
# Usage: apps/experiments/export_table.sh MGDA_WEIGHTS SPARSE_WEIGHTS [OUT_DIR]
#   (needs build/mtl, data/, and for the Cortex-M part arm-none-eabi-gcc, qemu-system-arm)
set -euo pipefail
MGDA=$1
SPARSE=$2
OUT=${3:-runs/exports}
mkdir -p "$OUT"
run() { echo "\$ $*"; "$@"; }

echo "== MultiLeNet (MGDA-UB): the engine against the exported C, 10,000 test images"
run build/mtl export --weights "$MGDA" --out "$OUT/multilenet-fp32" --test-images 100 --verify 10000 --json
run build/mtl export --weights "$MGDA" --out "$OUT/multilenet-int8" --int8 --calib 100 --test-images 100 \
  --verify 10000 --json
echo "== MultiLeNet on a Cortex-M4 (QEMU mps2-an386) against the host, 100 images"
run tests/embedded_check.sh "$OUT/multilenet-int8" multilenet
run tests/embedded_check.sh "$OUT/multilenet-fp32" multilenet --allow-differences

echo "== MDMTN (Chebyshev-AL): dense against pruned, 10,000 test images"
for p in fp32 int8; do
  flags=""; allow="--allow-differences"; [ $p = int8 ] && flags="--int8" && allow=""
  run build/mtl export --weights "$SPARSE" --out "$OUT/mdmtn-dense-$p" --no-prune $flags --test-images 100 \
    --verify 10000 --json
  run build/mtl export --weights "$SPARSE" --out "$OUT/mdmtn-pruned-$p" $flags --test-images 100 \
    --verify 10000 --json
  for d in dense pruned; do
    run tests/embedded_check.sh "$OUT/mdmtn-$d-$p" mdmtn $allow
  done
done
