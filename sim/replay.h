/* replay.h — replay a trace on a simulated cluster under one balancing policy.
 * Implements: per step, the policy's plan, the per-rank per-phase costs (cost.h), the step
 *   program of every DP rank (balancer + length all-gather, per-phase all-to-alls, encoder
 *   forwards, LLM forward/backward, encoder backwards, gradient sync per the training setup),
 *   run on the event engine (engine.h); per-step results, a run summary, and an optional
 *   Chrome-trace timeline.
 * Does not: print tables (cli/) or compute confidence intervals (analysis/).
 * Source: DESIGN.md §2-§5. Time: seconds in results (SimTime ns inside). Letters: D ranks,
 *   P phases (P-1 encoders, then the LLM). */
#ifndef OS_REPLAY_H
#define OS_REPLAY_H

#include <stdint.h>

#include "sim/cost.h"
#include "sim/engine.h"
#include "sim/layout.h"
#include "sim/model.h"
#include "sim/net.h"
#include "sim/policy.h"
#include "traces/trace.h"

#define REPLAY_MAX_PHASES (MODEL_MAX_ENC + 1)

/* DDP (replicated state, gradient all-reduce in the last micro-batch), FSDP FULL_SHARD
 * (ZeRO-3: parameters gathered per layer group for forward and again for backward, gradients
 * reduce-scattered every micro-batch), FSDP SHARD_GRAD_OP (ZeRO-2: gathered for forward only,
 * kept through backward). The FSDP semantics are PyTorch's without no_sync, as Composer and
 * llm-foundry run it (bench/fidelity/data/SOURCES-research.md §6). */
typedef enum { SETUP_DDP = 0, SETUP_FSDP = 1, SETUP_FSDP_GRAD_OP = 2 } TrainSetup;
typedef enum { AR_RING = 0, AR_TREE = 1 } AllReduceAlgo;
/* How a rank's share is cut into micro-batches: in drawn order under --micro-batch /
 * --micro-batch-tokens (mb-fixed), or verl's rearrange_micro_batches (mb-kk): the count from
 * the token budget (the most any rank needs, at least the pipeline depth), sequences spread by
 * Karmarkar-Karp on their cost, the smaller micro-batches at both ends of the pipeline. */
typedef enum { MBP_FIXED = 0, MBP_KK = 1 } MicroBatchPolicy;

/* DP ranks per stage a timeline keeps by default (ReplayConfig.timeline_ranks) */
#define REPLAY_TIMELINE_RANKS 32

typedef struct {
    const ModelSpec *model;   /* borrowed */
    const Calib *calib;       /* borrowed */
    Cluster cluster;          /* its tp, pp, cp must be the layout's (cluster_init_parallel) */
    Layout par;               /* tp, pp, cp, vp, sequence parallelism, TP overlap, encoder
                                 placement; tp = pp = cp = 1 (the default) takes the cluster's tp */
    TrainSetup setup;
    AllReduceAlgo allreduce;
    int recompute;            /* RecomputeMode (cost.h) */
    AttnLayout layout;        /* varlen or padded */
    const Policy *policy;     /* borrowed */
    PolicyOptions popt;
    uint64_t first_step;      /* first trace step replayed */
    uint64_t n_steps;         /* 0 = to the end of the trace */
    int regroup;              /* re-deal each global batch to the cluster's DP when they differ */
    uint32_t fsdp_groups;     /* FSDP: layer groups per module (all-gather/reduce-scatter each);
                                 0 = one per transformer layer, as llm-foundry and OrchMLLM wrap */
    uint32_t micro_batch;     /* examples per micro-batch per rank (0: the rank's whole share);
                                 more than a rank holds is clamped to its share (one micro-batch) */
    uint64_t micro_batch_tokens; /* LLM-token budget per micro-batch (0: none); both limits apply */
    int mb_policy;            /* MicroBatchPolicy; mb-kk needs micro_batch_tokens */
    uint32_t grad_reduce_bytes; /* bytes per gradient element reduced (FSDP reduce-scatter, DDP
                                 all-reduce): 0 = the model's param_bytes; 4 = fp32 reduction, as
                                 Composer's FSDP mixed precision DEFAULT does */
    int optimizer;            /* charge the optimizer step (AdamW) after the gradients */
    int grad_clip;            /* the gradient-norm all-reduce before it */
    double overlap_slowdown;  /* < 0: the calibration's factor; else this fraction, [0, 1) */
    uint32_t ddp_buckets;     /* DDP: gradient buckets per module, all-reduced as backward ends */
    int grad_sync_end;        /* Megatron-LM's gradient sync after the last backward even without
                                 a pipeline (DDP all-reduce or, with fsdp-grad-op, the distributed
                                 optimizer) instead of PyTorch DDP/FSDP's in-backward collectives */
    const char *timeline_path;/* Chrome trace JSON of one step, or NULL */
    uint64_t timeline_step;   /* which replayed step (0-based within the replay) goes there */
    uint32_t timeline_ranks;  /* DP ranks per stage the timeline keeps: the most and the least
                                 loaded and this many evenly spaced (prog_timeline_sample);
                                 0 = every rank. Default 32: a 2560-rank step is ~400 MB of JSON */
    int progress;             /* progress bar on stderr */
    EngineKind engine_kind;   /* ENGINE_HEAP; tests replay with ENGINE_NAIVE too */
    int ref_slowdown;         /* 1: price the overlap slowdown with program.c's reference twin
                                 (every in-flight op re-timed at every collective start and end)
                                 instead of its per-stage work clock; the same numbers, slower
                                 (tests and bench_replay --twin) */
    double balancer_cost_s;   /* < 0: charge each post-balancing step the balancer's measured
                                 runtime (default); >= 0: charge this fixed time instead, which
                                 makes the output byte-identical run to run */
} ReplayConfig;

/* Defaults: FSDP, ring, varlen, no recompute, policy "none", all steps, one FSDP group per
 * layer, 4 DDP buckets, one micro-batch per rank, optimizer and gradient clipping on, the
 * calibration's overlap slowdown, heap engine. cluster must still be set with cluster_init. */
void replay_config_init(ReplayConfig *c);

typedef struct {
    uint64_t step;            /* trace step index */
    uint32_t n_examples, n_items;
    uint64_t llm_tokens;      /* real LLM tokens in the global batch */
    uint64_t enc_positions[REPLAY_MAX_PHASES]; /* per encoder phase; [P-1] unused */
    double step_s;            /* simulated wall time of the step */
    double model_flops, model_flops_noattn, causal_flops, hw_flops; /* whole step, all ranks */
    double mfu, mfu_noattn, mfu_causal, hfu; /* fractions of cluster peak over step_s */
    double busy_s, idle_s, comm_s;           /* mean over ranks; busy+idle+comm = step_s */
    double phase_max_s[REPLAY_MAX_PHASES];   /* slowest rank's compute in the phase (fwd+bwd) */
    double phase_mean_s[REPLAY_MAX_PHASES];
    double phase_oracle_s[REPLAY_MAX_PHASES];/* max(total/D, largest unit) */
    double phase_imbalance[REPLAY_MAX_PHASES]; /* max/mean of per-rank compute */
    double phase_idle_frac[REPLAY_MAX_PHASES]; /* idle share of the phase's span, mean over ranks */
    uint64_t bytes_intra, bytes_inter;       /* rebalancing bytes moved (fwd + bwd) */
    double a2a_s;                            /* all-to-all time on the critical path */
    double grad_sync_s;                      /* exposed (not overlapped) gradient sync */
    double balancer_s;                       /* measured (thread CPU) time of the policy function, or
                                                cfg->balancer_cost_s when that is >= 0 */
    double balancer_measured_s;              /* the measurement, kept whatever is charged */
    uint32_t micro_batches;                  /* per rank this step (the most any rank needed) */
    double tp_comm_s, cp_comm_s;             /* mean worker's exposed TP (sequence-parallel
                                                all-gathers / reduce-scatters, or all-reduces)
                                                and CP (ring KV passes) time, inside busy_s */
    double bubble_s, p2p_s;                  /* mean worker's pipeline bubble (idle) and waiting
                                                on stage-to-stage transfers (comm) */
    double act_bytes_peak;                   /* activations held at once on the fullest GPU */
    double gemm_s, attn_s, mem_s;            /* mean over ranks of compute seconds by kind (/tp) */
    double optimizer_s;                      /* the optimizer step, per GPU */
    double slowed_s;                         /* mean over ranks of compute time lost to the overlap
                                                slowdown (inside busy_s) */
    /* The step's detail, borrowed: valid only inside the ReplayStepFn callback. */
    uint32_t D, P;
    const PhaseCost *rank_phase;             /* [D*P] DP rank r's share of phase p on one GPU (its
                                                TP x CP slice; with a pipeline, the mean stage's):
                                                times per GPU, FLOPs and tokens the rank's whole */
    const StepWork *work;                    /* the step's units as the policy saw them */
    const Plan *plan;                        /* the policy's answer */
    const TraceStep *trace_step;             /* the trace rows (example ids) */
} StepResult;

typedef struct {
    uint64_t steps;
    uint32_t P;                              /* phases */
    char phase_name[REPLAY_MAX_PHASES][32];  /* "image", "audio", "llm" */
    double step_mean_s, step_p50_s, step_p99_s, step_min_s, step_max_s;
    double tokens_per_s, samples_per_s;      /* LLM tokens and examples per simulated second */
    double mfu, mfu_noattn, mfu_causal, hfu; /* over the whole replay (sum flops / sum time) */
    double idle_frac;                        /* mean idle / step time */
    double phase_idle_frac[REPLAY_MAX_PHASES];
    double phase_imbalance[REPLAY_MAX_PHASES]; /* mean over steps of max/mean */
    double bytes_intra_per_step, bytes_inter_per_step;
    double a2a_s_per_step, balancer_s_per_step;
    double micro_batches_per_step;
    double gemm_s_per_step, attn_s_per_step, mem_s_per_step; /* mean rank, by kind */
    double optimizer_s_per_step, slowed_s_per_step, grad_sync_s_per_step;
    uint64_t mb_clamped;                     /* steps where --micro-batch exceeded a rank's share */
    uint64_t mb_below_pp;                    /* steps with fewer micro-batches than stages (1F1B
                                                then never reaches its steady state) */
    double tp_comm_s_per_step, cp_comm_s_per_step, bubble_s_per_step, p2p_s_per_step;
    double act_bytes_peak;                   /* the most activation bytes one GPU held */
    char layout[96];                         /* "tp 8, pp 16 (1F1B), cp 1, dp 128" */
    uint64_t events;                         /* engine events processed */
    double wall_s;                           /* host time the replay took */
    char calib_name[128];                    /* which calibration was used */
    uint64_t long_examples;                  /* examples/items longer than the model's limits */
    uint64_t needs_recompute;                /* examples whose activations fit one GPU only with
                                                --recompute (flagged, still replayed) */
    double state_bytes_per_gpu;              /* weights + grads + Adam states per GPU (the
                                                fullest pipeline stage's) */
} ReplaySummary;

/* The machine figures a calibration carries, onto a cluster: peak FLOP/s, NVLink and NIC
 * bandwidths when measured (> 0), and `nvls = 0` (a provenance key: the GPUs' NVSwitch has no
 * NVLink SHARP, e.g. A100). Callers apply their command-line overrides after. */
void replay_apply_calib(Cluster *c, const Calib *cal);

/* The "# policy: P", "# step: S", "# model: M", "# gpus: G" lines that open a timeline CSV (the
 * timeline figure titles its panel with them; analysis/plot.h). */
void replay_timeline_meta(char *buf, size_t cap, const char *policy, uint64_t step, const char *model,
                          uint32_t gpus);

/* "ddp", "fsdp", "fsdp-grad-op". */
const char *replay_setup_name(TrainSetup s);
/* Phase names of a model in replay order (encoders' modalities, then "llm"); returns P. */
uint32_t replay_phase_names(char (*names)[32], const ModelSpec *m);

/* Called after every step (may be NULL); a non-OK return stops the replay with that status. */
typedef OsStatus ReplayStepFn(const StepResult *r, void *user);

/* Replay cfg over trace t (rewound first). Validates the configuration against the trace:
 * modalities the model has no encoder for, DP mismatch without regroup (error with a hint
 * to use --regroup), examples longer than the model's limits or any GPU's memory. */
OsStatus replay_run(ReplaySummary *sum, const ReplayConfig *cfg, Trace *t, ReplayStepFn *cb,
                    void *user);

#endif
