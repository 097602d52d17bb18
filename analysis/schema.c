/* schema.c — see schema.h. Keep FORMATS.md in step: tests/test_analysis.c parses it. */
#include "analysis/schema.h"

#include <string.h>

#include "base/util.h"

const char *const SCHEMA_PHASES[SCHEMA_N_PHASES] = {"image", "audio", "video", "llm"};

static const CsvColumn RUN_COLS[] = {
    {"policy", "-", "balancing policy name (sim/policy.h registry)"},
    {"model", "-", "model preset name or preset file"},
    {"gpus", "count", "GPUs in the simulated cluster"},
    {"gpus_per_node", "count", "GPUs per node"},
    {"tp", "count", "tensor-parallel degree"},
    {"dp", "count", "data-parallel degree = gpus / tp"},
    {"setup", "-", "training setup: ddp or fsdp"},
    {"steps", "count", "steps replayed"},
    {"step_mean_s", "s", "mean simulated step time"},
    {"step_ci95_s", "s", "half-width of the 95% Student-t confidence interval of the mean step time"},
    {"step_p50_s", "s", "median step time"},
    {"step_p99_s", "s", "99th-percentile step time"},
    {"tokens_per_s", "tokens/s", "real LLM tokens per simulated second, whole cluster"},
    {"samples_per_s", "examples/s", "examples per simulated second, whole cluster"},
    {"mfu", "fraction", "model FLOPs utilisation, paper convention (no causal discount)"},
    {"mfu_noattn", "fraction", "MFU counting only the 6*params*tokens term"},
    {"mfu_causal", "fraction", "MFU with the LLM's causal attention halved"},
    {"hfu", "fraction", "hardware FLOPs utilisation (padding and recomputation included)"},
    {"speedup_vs_none", "ratio", "tokens_per_s over the `none` run with the same other inputs; empty when none"},
    {"idle_frac", "fraction", "mean over steps of rank-mean idle time / step time"},
    {"bytes_intra_per_step", "bytes", "rebalancing bytes moved inside nodes per step (fwd + bwd)"},
    {"bytes_inter_per_step", "bytes", "rebalancing bytes moved across nodes per step (fwd + bwd)"},
    {"a2a_s_per_step", "s", "all-to-all time on the critical path per step"},
    {"balancer_s_per_step", "s", "policy function time per step charged to the step: its measured thread CPU time, or --balancer-cost"},
    {"imbalance_image", "ratio", "mean over steps of max/mean per-rank image-encoder compute; empty when absent"},
    {"imbalance_audio", "ratio", "same for the audio encoder"},
    {"imbalance_video", "ratio", "same for the video encoder"},
    {"imbalance_llm", "ratio", "same for the LLM backbone"},
    {"idle_frac_image", "fraction", "idle share of the image phase's span, mean over ranks and steps; empty when absent"},
    {"idle_frac_audio", "fraction", "same for the audio phase"},
    {"idle_frac_video", "fraction", "same for the video phase"},
    {"idle_frac_llm", "fraction", "same for the LLM phase"},
    {"tokens_per_s_ci95", "tokens/s", "95% Student-t half-width over steps of per-step tokens/s; empty for one step"},
    {"mfu_ci95", "fraction", "the same for per-step MFU"},
    {"idle_frac_ci95", "fraction", "the same for the per-step idle fraction"},
    {"imbalance_image_ci95", "ratio", "the same for the image phase's per-step imbalance; empty when absent"},
    {"imbalance_audio_ci95", "ratio", "the same for the audio phase"},
    {"imbalance_video_ci95", "ratio", "the same for the video phase"},
    {"imbalance_llm_ci95", "ratio", "the same for the LLM phase"},
    {"long_examples", "count", "examples/items longer than the model's maximum lengths (flagged, still replayed)"},
    {"needs_recompute", "count", "examples (with a pipeline: stage-steps) whose activations fit a GPU only with --recompute; 0 = feasible as configured"},
    {"balancer_charge", "-", "how balancer_s_per_step was charged: modelled (the policy's cost model, sim/policy.c), fixed (--balancer-cost) or measured (host thread CPU time)"},
    {"balancer_modelled_s_per_step", "s", "the policy's modelled planning time per step, all phases (sim/policy.c); post policies are charged the part before their first all-to-all"},
    {"balancer_measured_s_per_step", "s", "the policy's measured runtime per step on the host that wrote the row, beside the charge; never used to rank"},
    {"recompute", "-", "activation recomputation: none, full or selective"},
    {"padded", "count", "1 = padded batches (--padded), 0 = varlen packing"},
    {"calibration", "-", "calibration table the cost model used"},
    {"trace", "-", "trace file as given on the command line"},
    {"trace_hash", "-", "FNV-1a 64 of the trace file's bytes, 16 hex digits"},
    {"orchsim_version", "-", "version of orchsim that wrote the row"},
    {"command", "-", "the command line that wrote the row"},
};

#define PHASE_STEP_COLS(p)                                                                      \
    {p "_max_s", "s", "slowest rank's " p " compute (fwd + bwd); empty when absent"},           \
    {p "_mean_s", "s", "rank-mean " p " compute"},                                              \
    {p "_oracle_s", "s", "lower bound max(total / D, largest unit) for " p},                   \
    {p "_imbalance", "ratio", "max / mean of per-rank " p " compute"},                          \
    {p "_idle_frac", "fraction", "idle share of the " p " phase's span, mean over ranks"}

static const CsvColumn STEP_COLS[] = {
    {"policy", "-", "balancing policy name"},
    {"step", "count", "trace step index"},
    {"n_examples", "count", "examples in the global batch"},
    {"n_items", "count", "non-text items in the global batch"},
    {"llm_tokens", "tokens", "real LLM tokens in the global batch"},
    {"step_s", "s", "simulated step time"},
    {"busy_s", "s", "rank-mean compute time"},
    {"idle_s", "s", "rank-mean waiting time"},
    {"comm_s", "s", "rank-mean exposed communication; busy + idle + comm = step"},
    {"mfu", "fraction", "model FLOPs utilisation, paper convention"},
    {"mfu_noattn", "fraction", "MFU without attention FLOPs"},
    {"mfu_causal", "fraction", "MFU with causal attention halved"},
    {"hfu", "fraction", "hardware FLOPs utilisation"},
    {"a2a_s", "s", "all-to-all time on the critical path"},
    {"grad_sync_s", "s", "exposed gradient synchronisation"},
    {"balancer_s", "s", "policy function time charged to the step: measured thread CPU time, or --balancer-cost"},
    {"bytes_intra", "bytes", "rebalancing bytes moved inside nodes"},
    {"bytes_inter", "bytes", "rebalancing bytes moved across nodes"},
    PHASE_STEP_COLS("image"),
    PHASE_STEP_COLS("audio"),
    PHASE_STEP_COLS("video"),
    PHASE_STEP_COLS("llm"),
};

static const CsvColumn TIMELINE_COLS[] = {
    {"rank", "count", "worker: stage * DP + DP rank (the DP rank without a pipeline)"},
    {"node", "count", "node of the worker's first GPU"},
    {"phase", "-", "image, audio, video, llm, sync, balance, optimizer or pipe"},
    {"op", "-", "short op name: fwd, bwd, a2a, allreduce, ..."},
    {"kind", "-", "compute, comm or idle (pipeline bubbles are idle)"},
    {"start_s", "s", "span start from the step's start"},
    {"end_s", "s", "span end from the step's start"},
    {"stage", "count", "pipeline stage (0 without a pipeline)"},
    {"replica", "count", "DP rank within the stage"},
};

static const CsvColumn VALIDATE_COLS[] = {
    {"step", "count", "trace step index"},
    {"policy", "-", "balancing policy name"},
    {"measured_s", "s", "step time measured on GPUs (CUDA events, max over ranks)"},
    {"predicted_s", "s", "step time the simulator predicts for the same step"},
    {"error_frac", "fraction", "(predicted - measured) / measured, signed"},
    {"mfu_measured", "fraction", "MFU from the measured step time (paper convention)"},
};

static const CsvColumn LOADS_COLS[] = {
    {"policy", "-", "balancing policy name"},
    {"step", "count", "trace step index"},
    {"rank", "count", "DP rank"},
    {"node", "count", "node of the rank"},
    {"phase", "-", "image, audio, video or llm"},
    {"units", "count", "items (encoder phase) or examples (LLM phase) the rank computes"},
    {"positions", "count", "their real positions (encoder) or LLM tokens"},
    {"fwd_s", "s", "the rank's forward time in the phase (divided by TP)"},
    {"bwd_s", "s", "the rank's backward time in the phase (divided by TP)"},
};

static const CsvColumn ASSIGN_COLS[] = {
    {"policy", "-", "balancing policy name"},
    {"step", "count", "trace step index"},
    {"unit", "-", "example (LLM phase) or item (encoder phase)"},
    {"index", "count", "the unit's index in the step (examples, then items, in trace order)"},
    {"example_id", "count", "the example's id in the trace (an item's owning example)"},
    {"phase", "-", "image, audio, video or llm"},
    {"length", "count", "LLM tokens (example) or encoder positions (item)"},
    {"drawn_rank", "count", "rank whose mini-batch drew the example"},
    {"home_rank", "count", "rank whose data loader holds it after pre-balancing"},
    {"rank", "count", "rank that computes the unit in this phase"},
};

static const CsvSchema SCHEMAS[] = {
    /* the feasibility and provenance columns (from long_examples on) came later: optional on input */
    {"run", "Run-level", RUN_COLS, OS_ARRAY_LEN(RUN_COLS), 39},
    {"step", "Step-level", STEP_COLS, OS_ARRAY_LEN(STEP_COLS), 0},
    {"timeline", "Timeline", TIMELINE_COLS, OS_ARRAY_LEN(TIMELINE_COLS), 7},
    {"validate", "Validate", VALIDATE_COLS, OS_ARRAY_LEN(VALIDATE_COLS), 0},
    {"loads", "Per-rank loads", LOADS_COLS, OS_ARRAY_LEN(LOADS_COLS), 0},
    {"assignment", "Assignment", ASSIGN_COLS, OS_ARRAY_LEN(ASSIGN_COLS), 0},
};

size_t schema_count(void) { return OS_ARRAY_LEN(SCHEMAS); }
const CsvSchema *schema_at(size_t i) { return i < OS_ARRAY_LEN(SCHEMAS) ? &SCHEMAS[i] : NULL; }

const CsvSchema *schema_find(const char *name) {
    for (size_t i = 0; i < OS_ARRAY_LEN(SCHEMAS); i++)
        if (!strcmp(SCHEMAS[i].name, name)) return &SCHEMAS[i];
    return NULL;
}

int schema_col(const CsvSchema *s, const char *name) {
    for (size_t i = 0; i < s->n_cols; i++)
        if (!strcmp(s->cols[i].name, name)) return (int)i;
    return -1;
}

void schema_write_header(FILE *fp, const CsvSchema *s) {
    for (size_t i = 0; i < s->n_cols; i++) csv_put_str(fp, s->cols[i].name, i == 0);
    csv_end_row(fp);
}

OsStatus schema_check(const CsvTable *t, const CsvSchema *s) {
    OsStatus st = OS_OK;
    for (size_t i = 0; i < s->n_cols; i++) {
        int c;
        if (s->n_required && i >= s->n_required) continue;
        OS_CHECK(csv_require(&c, t, s->cols[i].name));
    }
fail:
    return st;
}
