#!/usr/bin/env bash
# The run reports of issue 18 and their screenshots (docs/report-*.png):
#   a 10-epoch MGDA-UB MultiMNIST run (mtl train --report),
#   a 9-vector Chebyshev-AL sweep on MDMTN (mtl sweep --report; short runs: 6,000 images,
#     2 search + 2 retrain epochs each, so that the whole sweep takes minutes),
#   and the report of any finished Chebyshev-AL run directory given as CHEB_RUN (its
#     files are copied first: `mtl report` only writes report.html, but the original
#     stays untouched).
# Every HTML file is then checked: well-formed XML (python3's xml.etree), nothing
# fetched (no http(s) reference, <script>, <link>, <img>, url()), and screenshotted in
# headless Chromium (Debian `chromium`) at 1000 px wide, quantised (pngquant).
#
# Usage: apps/experiments/report_shots.sh [OUT_DIR] [CHEB_RUN]
#   (needs build/mtl, data/, chromium, python3, pngquant)
set -euo pipefail
OUT=${1:-runs/report-shots}
CHEB=${2:-}
DOCS=docs
mkdir -p "$OUT"
run() { echo "\$ $*"; "$@"; }

[ -f "$OUT/mgda10/result.json" ] ||
  run build/mtl train --method mgda-ub --model multilenet --dataset multimnist --epochs 10 --batch 256 \
    --lr 0.05 --threads 1 --quiet --out "$OUT/mgda10" --report
run build/mtl report "$OUT/mgda10"

[ -f "$OUT/sweep9/sweep.json" ] ||
  run build/mtl sweep --grid 8 --sparsity-pref 0.01 --train-limit 6000 --val 1000 --test-limit 2000 \
    --search-iters 2 --retrain-iters 2 --epochs-per-iter 1 --threads 1 --quiet --out "$OUT/sweep9" --report
run build/mtl report "$OUT/sweep9"

if [ -n "$CHEB" ]; then
  rm -rf "$OUT/cheb" && mkdir -p "$OUT/cheb"
  cp "$CHEB"/metrics.csv "$CHEB"/config.json "$OUT/cheb/"
  [ -f "$CHEB/result.json" ] && cp "$CHEB/result.json" "$OUT/cheb/"
  run build/mtl report "$OUT/cheb"
fi

echo "== well-formed and self-contained"
for f in "$OUT"/mgda10/report.html "$OUT"/sweep9/report.html "$OUT"/sweep9/run-*/report.html "$OUT"/sweep9/front.svg \
         ${CHEB:+"$OUT"/cheb/report.html}; do
  python3 - "$f" <<'EOF'
import re, sys, xml.etree.ElementTree as ET
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
root = ET.fromstring(re.sub(r"^<!DOCTYPE[^>]*>", "", text.lstrip()))
svgs = [e for e in root.iter() if e.tag.split("}")[-1] == "svg"]
series = [e for e in root.iter() if e.get("class") == "series"]
bad = [b for b in ("http://", "https://", "<script", "<link", "<img", "url(http", "@import") if b in text
       and not (b == "http://" and text.count("http://") == text.count('xmlns="http://www.w3.org/2000/svg"'))]
print(f"{path}: {len(text)} bytes, XML ok, {len(svgs)} svg, {len(series)} series, external refs: {bad or 'none'}")
sys.exit(1 if bad else 0)
EOF
done

echo "== screenshots (headless Chromium, a 1400 px wide page rendered at 1000 px, pngquant)"
shot() {  # HTML PNG HEIGHT (of the page, in CSS px)
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=0.7143 \
    --window-size=1400,"$3" --screenshot="$OUT/shot.png" "file://$(realpath "$1")" 2>/dev/null
  pngquant --force --quality 50-80 --output "$2" "$OUT/shot.png"
  echo "$2: $(stat -c %s "$2") bytes"
}
shot "$OUT/mgda10/report.html" "$DOCS/report-mgda-ub.png" 2600
shot "$OUT/sweep9/report.html" "$DOCS/report-sweep.png" 1500
shot "$OUT/sweep9/run-4/report.html" "$DOCS/report-sweep-run.png" 3400
[ -n "$CHEB" ] && shot "$OUT/cheb/report.html" "$DOCS/report-chebyshev-al.png" 3400
true
