/* fidelity.h — the simulator's absolute predictions against published training runs and
 * collective benchmarks (`orchsim fidelity`, bench/fidelity/).
 * Implements: reading a table of published runs (the columns of ../shared/fidelity's
 *   llm-foundry table; optional tp/pp/cp/gpus_per_node/peak_tflops/calibration columns),
 *   replaying each row with its exact configuration (model preset, GPUs, micro-batch,
 *   gradient accumulation, sharding, checkpointing) on a fixed-length text trace built for it,
 *   the signed error of tokens/s/GPU and MFU, MAPE overall and by group, scale-out ratios; and
 *   a table of published collective bus bandwidths beside sim/net's, rows the simulator cannot
 *   reproduce kept with the reason.
 * Does not: print (cli/cmd_fidelity.c does) or fit anything: every number comes from the
 *   cost model and its calibration.
 * Source: bench/fidelity/README.md; ../shared/fidelity/README.md. */
#ifndef OS_ANALYSIS_FIDELITY_H
#define OS_ANALYSIS_FIDELITY_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "sim/cost.h"
#include "sim/replay.h"

/* One published training run (a row of the runs table). */
typedef struct {
    size_t line;              /* line in the file */
    char model[64];
    uint32_t seq_len, gpus, micro_batch, grad_accum, global_batch;
    uint32_t gpus_per_node;   /* optional column, default 8 */
    uint32_t tp;              /* optional column, default 1 */
    uint32_t pp, cp, vp;      /* optional columns, default 1: pipeline stages, context
                                 parallelism, model chunks per stage (interleaved 1F1B) */
    TrainSetup setup;         /* from `sharding`: FULL_SHARD, SHARD_GRAD_OP, NO_SHARD (DDP) */
    char sharding[24];
    int ckpt;                 /* activation_checkpointing: full recomputation */
    uint32_t reduce_bytes;    /* from `mp_mode` (Composer's FSDP mixed precision): DEFAULT reduces
                                 gradients in fp32 (4), PURE in bf16 (2), FULL fp32; absent:
                                 DEFAULT, what llm-foundry's H100 tables ran (their MP Mode column) */
    double tps_pub;           /* published tokens/s/GPU */
    double mfu_pub, hfu_pub;  /* published, fractions (NaN when absent) */
    double num_params;        /* published parameter count (NaN when absent) */
    double peak_flops;        /* optional peak_tflops column x 1e12 (NaN: the calibration's) */
} FidRun;

typedef struct {
    FidRun run;
    int ok;                   /* predicted; else why says why not */
    char why[256];
    double tps_pred;          /* tokens/s/GPU */
    double err;               /* tps_pred / tps_pub - 1 */
    double mfu_pred, hfu_pred;/* the published table's convention (6N + 12 L d s, with its N) */
    double step_s;            /* simulated step */
    double gemm_s, attn_s, mem_s, opt_s, slowed_s, exposed_comm_s; /* per step, mean rank */
    uint32_t micro_batches;
    double params_ours;       /* the preset's parameter count at this sequence length */
} FidResult;

/* Read the runs table; errors name the file, line and column. *runs is malloc'd. */
OsStatus fid_read_runs(FidRun **runs, size_t *n, const char *path);

typedef struct {
    const char *models_dir;   /* where <model>.model preset files live (besides built-ins); may be NULL */
    const char *traces_dir;   /* where the fixed-length traces are written (created) */
    const Calib *calib;       /* borrowed */
    uint64_t steps;           /* steps per trace (>= 1) */
} FidOptions;

/* Predict one run. A row that cannot be built (unknown model, a batch that does not divide,
 * a configuration the simulator rejects) gives ok = 0 and the reason in why, never a status:
 * the table keeps every row. Returns non-OK only for I/O failures of the traces folder. */
OsStatus fid_predict(FidResult *res, const FidRun *run, const FidOptions *o);

/* Mean absolute percentage error over the predicted results selected by keep (NULL = all);
 * *n gets the count. NaN when none. */
double fid_mape(const FidResult *r, size_t n, int (*keep)(const FidResult *, const void *), const void *arg,
                size_t *count);

/* One published collective figure (a row of the collectives table). */
typedef struct {
    size_t line;
    char coll[16];            /* allreduce, allgather, reducescatter, alltoall */
    uint32_t gpus, gpus_per_node;
    double bytes;             /* nccl-tests size (the total array for RS/AG) */
    double busbw_pub;         /* bytes/s */
    char fabric[24];          /* nvlink (one node), ib-ndr, roce, tcpxo, unknown */
    char algo[24];            /* default, ring, nvls, tree, nvlstree */
    char source[160];
} FidColl;

OsStatus fid_read_colls(FidColl **rows, size_t *n, const char *path);
/* sim/net's bus bandwidth for a collective of `bytes` on gpus (gpus_per_node per node), bytes/s,
 * or NaN with *why set when the case is outside what sim/net models (fabric, algorithm). */
double fid_coll_busbw(const char *coll, uint32_t gpus, uint32_t gpus_per_node, double bytes, const char *fabric,
                      const char *algo, const char **why);

#endif
