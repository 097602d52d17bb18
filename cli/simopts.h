/* simopts.h — the simulator options shared by `replay`, `compare`, `advise` and `sweep` (whose
 * grid axes take lists under the same names): one OptSpec fragment
 * (cluster, model, setup, calibration, policy knobs) and its resolution into a ReplayConfig.
 * Implements: defaults, the option rows, parsing of enum-like strings, cluster overrides,
 *   printing the resolved configuration as "#" lines (STYLE habit 9).
 * Does not: run anything. */
#ifndef OS_CLI_SIMOPTS_H
#define OS_CLI_SIMOPTS_H

#include <stdint.h>
#include <stdio.h>

#include "cli/opts.h"
#include "sim/cost.h"
#include "sim/model.h"
#include "sim/replay.h"

typedef struct {
    const char *model, *setup, *allreduce, *calibration, *objective, *recompute_mode, *grad_reduce;
    const char *parallel, *pp_layout, *mb_policy;
    uint32_t gpus, gpus_per_node, tp, fsdp_groups, ddp_buckets, micro_batch;
    uint64_t steps, skip, cap_tokens, cap_positions, seed, micro_batch_tokens;
    int recompute, padded, regroup, quiet, no_optimizer;
    int allow_cross_node_tp, tp_overlap, no_sp;
    double intra_gbps, inter_gbps, intra_lat_us, inter_lat_us, peak_tflops, mem_gb, balancer_cost_s;
    double overlap_slowdown;
    /* resolved */
    ModelSpec model_spec;
    Calib calib;
} SimOpts;

#define SIMOPTS_N 37
void simopts_init(SimOpts *o);
/* Fill specs[0..SIMOPTS_N) with the shared rows pointing into o. */
void simopts_specs(OptSpec *specs, SimOpts *o);
/* Resolve into cfg (policy left as cfg's default); gpus == 0 means "the trace's DP x TP x PP x
 * CP". The layout (--parallel, --pp-layout, ...) is resolved against the cluster and model. */
OsStatus simopts_resolve(ReplayConfig *cfg, SimOpts *o, Trace *t);
/* "# key: value" lines describing what was resolved (stderr unless quiet). */
void simopts_announce(FILE *fp, const SimOpts *o, const ReplayConfig *cfg, const char *trace);
const char *simopts_setup_name(TrainSetup s);
/* OS_OK when name is a training setup --setup accepts; else an error naming opt and the list. */
OsStatus simopts_check_setup(const char *name, const char *opt);

#endif
