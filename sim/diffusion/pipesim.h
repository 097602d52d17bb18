/* pipesim.h — replay a request trace through a pipeline of text-to-image stages on a
 *   simulated cluster, under one balancing policy per stage.
 * Implements: per trace step (a global batch of requests, dealt to the D data-parallel ranks
 *   in drawn order) and per stage in the pipeline's order: each request's cost (stage.h), one
 *   StepWork whose units are the requests (P = 1: the stage is the one phase; no items), the
 *   REGISTERED policy's Plan (policy.h: the same code as training's phases, plan_check'ed),
 *   the moves it implies as one all-to-allv costed from its byte list (net.h), the balancer's
 *   own cost (post policies: the lengths all-gather and the modelled planning charge, exposed), and the
 *   ranks' times: a barrier stage starts when every rank has finished every predecessor, a
 *   streaming one on each rank when its own inputs and those of the ranks sending to it are
 *   ready. No backward, optimizer or gradient sync, except in fine-tuning mode: denoiser
 *   stages train (forward + backward per image), then the gradient all-reduce (net.h ring) and
 *   the AdamW step; other stages are skipped.
 * Does not: print (cli/cmd_pipeline.c), or run replay.c's training program (see README: the
 *   UNet cannot go through cost.c's transformer phases).
 * Source: DESIGN.md §4, §9; ../shared/CPDM.md. Time: seconds (results), summed over steps. */
#ifndef OS_DIFFUSION_PIPESIM_H
#define OS_DIFFUSION_PIPESIM_H

#include <stdint.h>

#include "sim/diffusion/stage.h"
#include "sim/net.h"
#include "sim/policy.h"
#include "traces/requests.h"
#include "traces/trace.h"

typedef enum { PIPE_INFER = 0, PIPE_FINETUNE = 1 } PipeMode;
typedef enum { ROLE_INFER = 0, ROLE_TRAIN = 1, ROLE_SKIPPED = 2 } StageRole;

typedef struct {
    const Pipeline *pipe;     /* borrowed */
    const Calib *calib;       /* borrowed */
    Cluster cluster;          /* D = cluster.dp data-parallel ranks (tp = 1) */
    const Policy *policy;     /* borrowed: a row of the registry */
    PolicyOptions popt;
    PipeMode mode;
    double balancer_cost_s;   /* < 0: each post policy call is charged the policy's modelled
                                 planning cost (policy_charge_s: deterministic); >= 0: this */
    uint64_t first_step, n_steps; /* n_steps 0 = to the end */
    int regroup;              /* re-deal each step to the cluster's D when the trace's differs */
    double grad_bytes_per_param; /* fine-tuning: gradient all-reduce bytes per parameter (4) */
} PipeConfig;

/* Defaults: policy "none", objective cost, measured balancer, every step, fp32 gradients. */
void pipe_config_init(PipeConfig *c);

typedef struct {
    char name[PIPE_NAME_LEN];
    StageKind kind;
    StageRole role;
    uint64_t requests, images;    /* processed (each request exactly once per stage) */
    double span_s;                /* sum over steps: first start to last end of the stage */
    double compute_max_s, compute_mean_s, oracle_s; /* sums over steps of the slowest rank's,
                                     the mean rank's compute, and max(total / D, largest) */
    double imbalance;             /* mean over steps of max / mean compute */
    double balancer_s, lengths_s, a2a_s; /* exposed planning charge, length all-gather, all-to-all */
    double planned_s;             /* the policy calls' measured thread CPU time (not charged) */
    double grad_sync_s, optimizer_s;     /* fine-tuning */
    double busy_gpu_s;            /* compute seconds summed over ranks and steps */
    double model_flops, exec_flops;
    uint64_t moved, bytes_intra, bytes_inter; /* requests that changed rank, their bytes */
} PipeStageSum;

typedef struct {
    uint32_t n_stages;
    PipeStageSum st[PIPE_MAX_STAGES]; /* in the pipeline file's order */
    uint64_t steps, requests;
    uint32_t gpus;
    double total_s;               /* simulated wall time of the replayed steps */
    double gpu_hours;             /* total_s x gpus / 3600: what a reservation costs */
    double busy_gpu_hours;        /* compute only */
    double model_flops, exec_flops;
    double conv_frac;             /* the conv fraction used, and whether the table measured it */
    int conv_measured;
    char calib_name[128];
} PipeSummary;

/* Replay cfg over trace t (rewound first); req: its request tables, or NULL / empty (every
 * request takes its stage's defaults). Errors name the trace, the row and the field. */
OsStatus pipe_run(PipeSummary *sum, const PipeConfig *cfg, Trace *t, const T2iRequests *req);

#endif
