#!/usr/bin/env bash
# The demo `make demo` runs: generate the bundled demo traces, inspect them, replay, compare the
# balancing policies at 64 and 2560 simulated H100s, two small sweeps, and the figures.
# Usage: cli/demo.sh path/to/orchsim OUTDIR
set -euo pipefail
BIN=${1:-build/orchsim}
OUT=${2:-demo-out}
mkdir -p "$OUT"
run() { echo; echo "\$ orchsim $*"; "$BIN" "$@"; }
# ORCHSIM_PLOT_SIZE=WxH draws the figures at another size (make readme-figures uses it)
PLOTSZ=()
if [ -n "${ORCHSIM_PLOT_SIZE:-}" ]; then PLOTSZ=(--size "$ORCHSIM_PLOT_SIZE"); fi
T0=$(date +%s)

# The demo traces (fixed profiles and seeds: the same bytes every time; traces/README.md
# documents the profiles). tri: the paper's three-modality setting, 4 global batches of 40960
# examples drawn for 2560 data-parallel ranks (16 per rank). vl: image-text SFT data, for the
# model-size sweep (the VL presets have no audio encoder).
TRI="$OUT/demo-tri.h5"
VL="$OUT/demo-vl.h5"
run gen --profile tri-modal-mix --seed 42 --steps 4 --global-batch 40960 --dp 2560 -o "$TRI"
run gen --profile vl-sft --seed 42 --steps 4 --global-batch 4096 --dp 256 -o "$VL"
run info "$TRI"
"$BIN" info "$TRI" --json > "$OUT/info.json"

# One policy, with a Perfetto timeline of the first step. The 84B model trains with activation
# recomputation (without it, long examples do not fit an 80 GB H100: replay says so).
run replay "$TRI" --model orch-84b --recompute --policy post-node --no-progress \
    --csv "$OUT/replay_post-node.csv" --timeline "$OUT/timeline_post-node.json"

# Every policy at 64 and at 2560 simulated H100s.
run compare "$TRI" --model orch-84b --recompute --gpus 64 --regroup --no-progress \
    --csv "$OUT/compare_64.csv" --json "$OUT/compare_64.json"
run compare "$TRI" --model orch-84b --recompute --gpus 2560 --no-progress \
    --csv "$OUT/compare_2560.csv" --json "$OUT/compare_2560.json" \
    --steps-dir "$OUT/steps_2560" --timeline-dir "$OUT/timelines_2560"

# The decision: which policy, how sure, what it saves, and why (a self-contained HTML report).
run advise "$TRI" --model orch-84b --recompute --gpus 2560 --no-progress \
    --html "$OUT/advice.html" --csv "$OUT/advice.csv"

# Sweeps: GPU counts (throughput scaling) and model sizes (MFU per model).
run sweep "$TRI" --policies none,lpt,post,post-node --gpus 256,512,1024,2560 \
    --models orch-84b --setups fsdp --recompute --steps 4 -q -o "$OUT/sweep_gpus.csv" --h5 "$OUT/sweep_gpus.h5"
run sweep "$VL" --policies none,lpt,post,post-node --gpus 256 \
    --models llava-7b,vl-14b,vl-32b,orch-84b --setups fsdp --recompute --steps 4 -q -o "$OUT/sweep_models.csv"

# The figures (gnuplot scripts in plots/).
run plot throughput "$OUT/sweep_gpus.csv" -o "$OUT/plots" "${PLOTSZ[@]}"
run plot mfu "$OUT/sweep_models.csv" -o "$OUT/plots" "${PLOTSZ[@]}"
run plot timeline "$OUT/timelines_2560/timeline_none.csv" "$OUT/timelines_2560/timeline_post-node.csv" -o "$OUT/plots" "${PLOTSZ[@]}"
run plot imbalance-cdf "$OUT"/steps_2560/steps_none.csv "$OUT"/steps_2560/steps_lpt.csv \
    "$OUT"/steps_2560/steps_post.csv "$OUT"/steps_2560/steps_post-node.csv -o "$OUT/plots" "${PLOTSZ[@]}"
run plot composition "$TRI" -o "$OUT/plots" "${PLOTSZ[@]}"

echo
echo "orchsim demo: done in $(( $(date +%s) - T0 )) s. Outputs are in $OUT/, figures in $OUT/plots/:"
ls -1 "$OUT/plots"
