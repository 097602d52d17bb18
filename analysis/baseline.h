/* baseline.h — the Megatron-LM baseline: what a Megatron-LM user would run for this model on
 * this cluster, as a row beside orchsim's pure-DP policies.
 * Implements: the baseline's configuration from the user's — Megatron-LM's layout (TP x PP
 *   (x CP) x DP, GPUs in its order), packed sequences (Megatron-LM's packed-sequence path;
 *   padding on request), no rebalancing (policy none: every rank keeps the examples it drew),
 *   the distributed optimizer (gradients reduce-scattered and parameters all-gathered after the
 *   pipeline flush, Megatron-LM's default without --overlap-grad-reduce), one example per
 *   micro-batch unless the user gave --micro-batch; and the layout rule when none is given:
 *   the smallest model-parallel size that fits, TP first inside a node (1, 2, 4, 8 up to the
 *   node's GPUs, dividing the attention heads), then PP (powers of two up to the LLM's layers),
 *   each candidate checked by replaying the trace's first step (a memory refusal moves on).
 * Does not: print anything, or claim Megatron-LM's kernels: the cost model is the same for
 *   every row (see README "Against Megatron-LM").
 * Source: Narayanan et al. 2021 (arXiv 2104.04473) §5 (TP within a node, then PP);
 *   Megatron-LM arguments.py (--use-distributed-optimizer, --overlap-grad-reduce off). */
#ifndef OS_BASELINE_H
#define OS_BASELINE_H

#include <stddef.h>

#include "sim/replay.h"
#include "traces/trace.h"

/* Fill *out from *user (model, calibration, cluster links, steps) for the Megatron-LM row.
 * parallel: "tp=8,pp=4" or NULL for the rule above; padded: pad instead of packing. desc gets
 * "tp 8 + sequence parallel, pp 4 (1F1B), cp 1, dp 80 (fits: the smallest that does)". Errors
 * name --baseline-parallel; no candidate fitting is an error saying what was tried. */
OsStatus baseline_megatron(ReplayConfig *out, const ReplayConfig *user, Trace *t, const char *parallel, int padded,
                           char *desc, size_t cap);

#endif
