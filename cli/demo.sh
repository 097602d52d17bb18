#!/usr/bin/env bash
# The demo `make demo` runs: generate the bundled demo trace, inspect it, replay it, compare
# the balancing policies at 64 and 2560 simulated GPUs, a small sweep, and the figures.
# Usage: cli/demo.sh path/to/orchsim OUTDIR
set -euo pipefail
BIN=${1:-build/orchsim}
OUT=${2:-demo-out}
mkdir -p "$OUT"
run() { echo; echo "\$ orchsim $*"; "$BIN" "$@"; }

# The demo trace: the paper's three-modality setting (text + image + audio), 4 global batches
# of 5120 examples drawn for 2560 data-parallel ranks. Fixed profile and seed: same bytes
# every time (traces/README.md documents the profile).
TRACE="$OUT/demo-tri.h5"
run gen --profile tri-modal-mix --seed 42 --steps 4 --global-batch 5120 --dp 2560 -o "$TRACE"
run info "$TRACE"
run info "$TRACE" --json > "$OUT/info.json"

# One policy, with a Perfetto timeline of the first step.
run replay "$TRACE" --model orch-84b --gpus 64 --regroup --policy none --no-progress \
    --csv "$OUT/replay_none.csv" --timeline "$OUT/timeline_replay_none.json"

# Every policy at 64 and at 2560 simulated H100s.
run compare "$TRACE" --model orch-84b --gpus 64 --regroup --no-progress \
    --csv "$OUT/compare_64.csv" --json "$OUT/compare_64.json"
run compare "$TRACE" --model orch-84b --gpus 2560 --no-progress \
    --csv "$OUT/compare_2560.csv" --steps-dir "$OUT/steps_2560" --timeline-dir "$OUT/timelines_2560"

if "$BIN" --help | grep -q '^  sweep'; then
  run sweep "$TRACE" --policies none,lpt,post,post-node --gpus 64,256,1024,2560 \
      --models orch-84b --setups fsdp -o "$OUT/sweep.csv" --h5 "$OUT/sweep.h5"
  run sweep "$TRACE" --policies none,lpt,post,post-node --gpus 2560 \
      --models llava-7b-av,vl-14b-av,vl-32b-av,orch-84b --setups fsdp -o "$OUT/sweep_models.csv" 2>/dev/null || true
fi
if "$BIN" --help | grep -q '^  plot'; then
  run plot all --sweep "$OUT/sweep.csv" --steps "$OUT"/steps_2560/steps_*.csv \
      --timeline "$OUT/timelines_2560/timeline_none.csv" "$OUT/timelines_2560/timeline_post-node.csv" \
      --trace "$TRACE" -o "$OUT/plots"
fi
echo
echo "orchsim demo: outputs are in $OUT/"
ls -1 "$OUT"
