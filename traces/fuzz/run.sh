#!/bin/sh
# run.sh — build the trace/import fuzzers with clang (libFuzzer + ASan + UBSan) and run each
# for a bounded time, in fork mode with -ignore_crashes so one crash does not end the run.
# Needs clang and libclang-rt-dev (Debian: clang-14, libclang-rt-14-dev).
# usage: traces/fuzz/run.sh [SECONDS_PER_TARGET] [TARGETS]   (default 30 s, "trace trace_struct import runs config")
# Targets: trace (raw bytes as a trace file), trace_struct (bytes as a recipe for a trace built
#   through the HDF5 API, so checksums hold and orchsim's own checks are reached), import,
#   runs (a published-runs table for `orchsim fidelity`: CSV, or markdown pipe tables),
#   config (a model preset file or a calibration table, sim/fuzz/).
# Keeps: $FUZZ_OUT/corpus_<target>/ (grown corpus, reused by the next run; seeded from the
#   generator and from traces/fuzz/corpus-*), $FUZZ_OUT/artifacts_<target>/ (crash-*, timeout-*,
#   oom-* inputs), $FUZZ_OUT/fuzz_<target>.log (libFuzzer's full output).
# Cleans: the targets read inputs from memory files and write outputs under
#   $TMPDIR/orchsim-fuzz/, which is removed at the end; libFuzzer's fork-mode temp dirs are its own.
set -eu
SECS=${1:-30}
TARGETS=${2:-"trace trace_struct import runs config"}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${FUZZ_OUT:-$ROOT/build-fuzz}
CC=${CC:-clang}
for t in trace trace_struct import runs config; do mkdir -p "$OUT/corpus_$t" "$OUT/artifacts_$t"; done
H5_CFLAGS=$(pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
H5_LIBS=$(pkg-config --libs hdf5 2>/dev/null || echo "-L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5")
SRC="$ROOT/base/status.c $ROOT/base/util.c $(ls "$ROOT"/traces/*.c | tr '\n' ' ')"
DEFS="-std=c11 -D_GNU_SOURCE -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I$ROOT $H5_CFLAGS"
FLAGS="$DEFS -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
for t in trace trace_struct import; do
    $CC $FLAGS "$ROOT/traces/fuzz/fuzz_$t.c" $SRC $H5_LIBS -lz -lgsl -lgslcblas -lm -o "$OUT/fuzz_$t"
done
# the runs target lives in analysis/fuzz/ (above traces/ in the layering) and links the
# simulator (fidelity.c replays rows)
SIM_SRC="$(ls "$ROOT"/sim/*.c "$ROOT"/sim/balance/*.c "$ROOT"/sim/diffusion/*.c | tr '\n' ' ')"
$CC $FLAGS "$ROOT/analysis/fuzz/fuzz_runs.c" $SRC $SIM_SRC "$ROOT/analysis/csv.c" "$ROOT/analysis/fidelity.c" \
    $H5_LIBS -lz -lgsl -lgslcblas -lm -o "$OUT/fuzz_runs"
$CC $FLAGS "$ROOT/sim/fuzz/fuzz_config.c" $SRC $SIM_SRC $H5_LIBS -lz -lgsl -lgslcblas -lm -o "$OUT/fuzz_config"
# Seed corpus: small traces from the generator (via a tiny driver), example inputs, and the
# committed corpora (crash regressions and a minimised corpus from earlier runs).
cat > "$OUT/mkseed.c" <<'C'
#include <stdio.h>
#include "traces/gen.h"
int main(int argc, char **argv) {
    (void)argc;
    const char *profiles[] = {"vl-sft", "asr", "tri-modal-mix", "video"};
    for (int i = 0; i < 4; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s.h5", argv[1], profiles[i]);
        GenConfig c = {profiles[i], 1, 2, 4, 2, 4, "seed"};
        if (gen_write(p, &c) != OS_OK) return 1;
    }
    return 0;
}
C
$CC $DEFS "$OUT/mkseed.c" $ROOT/base/status.c $ROOT/base/util.c $ROOT/traces/trace.c $ROOT/traces/trace_write.c \
    $ROOT/traces/h5util.c $ROOT/traces/gen.c $ROOT/traces/profiles.c $H5_LIBS -lgsl -lgslcblas -lm -o "$OUT/mkseed"
"$OUT/mkseed" "$OUT/corpus_trace"
for d in "$ROOT"/traces/fuzz/corpus-crashes "$ROOT"/traces/fuzz/corpus-trace; do
    [ -d "$d" ] && cp -n "$d"/* "$OUT/corpus_trace/" 2>/dev/null || true
done
[ -d "$ROOT/traces/fuzz/corpus-trace_struct" ] && cp -n "$ROOT"/traces/fuzz/corpus-trace_struct/* "$OUT/corpus_trace_struct/" 2>/dev/null || true
printf '\0' > "$OUT/corpus_trace_struct/zero" # the all-default recipe: the valid template
[ -d "$ROOT/traces/fuzz/corpus-import" ] && cp -n "$ROOT"/traces/fuzz/corpus-import/* "$OUT/corpus_import/" 2>/dev/null || true
printf '{"id": 7, "text": 512, "image": [576, 576], "audio": [1500]}\n{"text": 3}\n' > "$OUT/corpus_import/a.jsonl"
printf '[{"id": "x1", "text": 512.0, "image": 0, "source": "s"}, {"text": 3, "audio": null}]\n' > "$OUT/corpus_import/b.json"
printf 'id,text,image,audio\n7,512,576;576,1500\n8,3,,\n' > "$OUT/corpus_import/a.csv"
# runs seeds: the first byte picks the format (even: CSV, odd: markdown)
{ printf '\0'; cat "$ROOT/bench/fidelity/runs/llm-foundry-h100-bf16.csv"; } > "$OUT/corpus_runs/suite.csv"
{ printf '\1'; printf '# t\n| Model | SeqLen (T) | # GPUs | MicroBatchSize | GradAccum | GlobalBatchSize | Throughput (T/s/GPU) | Sharding Strategy | Activation Checkpointing |\n|---|---|---|---|---|---|---|---|---|\n| 7b | 2048 | 8 | 6 | 1 | 48 | 10643 | FULL_SHARD | False |\n'; } > "$OUT/corpus_runs/readme.md"
# config seeds: every shipped preset (first byte even) and calibration table (odd)
for f in "$ROOT"/bench/fidelity/models/*.model; do { printf '\0'; cat "$f"; } > "$OUT/corpus_config/m-$(basename "$f")"; done
for f in "$ROOT"/bench/fidelity/calib/*.calib; do { printf '\1'; cat "$f"; } > "$OUT/corpus_config/c-$(basename "$f")"; done
[ -d "$ROOT/analysis/fuzz/corpus-runs" ] && cp -n "$ROOT"/analysis/fuzz/corpus-runs/* "$OUT/corpus_runs/" 2>/dev/null || true
# HDF5 1.10.8 itself leaks on some corrupt files (the leaking allocations are made inside
# libhdf5 while every id we opened is closed), so leaks whose stack is in libhdf5 are
# suppressed; leaks in orchsim are not. Corrupt sizes also make HDF5 ask malloc for absurd
# amounts: allocator_may_return_null=1 gives it the NULL a normal malloc returns.
cp "$ROOT/traces/fuzz/lsan.supp" "$OUT/lsan.supp"
export TMPDIR=${TMPDIR:-/tmp}
cd "$OUT"
for t in $TARGETS; do
    echo "== fuzz_$t for ${SECS}s (fork mode, -ignore_crashes)"
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 LSAN_OPTIONS=suppressions="$OUT/lsan.supp" \
        "./fuzz_$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -timeout=20 -rss_limit_mb=2048 \
        -max_total_time="$SECS" -print_final_stats=1 -artifact_prefix="$OUT/artifacts_$t/" "corpus_$t" \
        > "$OUT/fuzz_$t.log" 2>&1 || true
    grep -E "^#[0-9]+: cov" "$OUT/fuzz_$t.log" | tail -1
    grep -E "stat::|INFO: fuzzed|crashes:|DONE" "$OUT/fuzz_$t.log" | tail -6
    echo "artifacts: $(ls "$OUT/artifacts_$t" | wc -l) in $OUT/artifacts_$t"
done
rm -rf "$TMPDIR/orchsim-fuzz"
