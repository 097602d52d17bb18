/* fidelity.h — the simulator's absolute predictions against published training runs and
 * collective benchmarks (`orchsim fidelity`, bench/fidelity/).
 * Implements: reading a table of published runs (the columns of ../shared/fidelity's
 *   llm-foundry table; optional tp/pp/cp/vp/gpus_per_node/peak_tflops/mp_mode/num_params/
 *   sequence_parallel/calibration/mfu_convention columns), the calibration tables the rows name
 *   (each loaded once), replaying each row with its exact configuration (model preset, GPUs,
 *   micro-batch, gradient accumulation, sharding, checkpointing, parallel layout, calibration)
 *   on a fixed-length text trace built for it, the signed error of tokens/s/GPU and MFU in the
 *   table's own FLOP convention, MAPE overall and by group, scale-out ratios; and
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

/* The FLOP count behind a table's MFU / TFLOP/s figures (column mfu_convention):
 *  palm          (6 N + 12 L h s) per token with the table's N (PaLM App. B; REFERENCE §D.1);
 *  megatron-eq3  Narayanan et al. 2021 eq. (3), 96 B s l h^2 (1 + s / 6h + V / 16 l h) per
 *                batch of B sequences: forward, backward AND the recomputed forward (the paper's
 *                "teraFLOP/s per GPU" and "% of theoretical peak" are this over the step). */
typedef enum { FID_FLOPS_PALM = 0, FID_FLOPS_MEGATRON_EQ3 = 1 } FidFlops;

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
    int sp;                   /* optional sequence_parallel column (True/False); -1 when absent: the
                                 layout's default (on with TP, Megatron-Core's) */
    int flops;                /* FidFlops, from the optional mfu_convention column (default palm) */
    char calibration[256];    /* optional calibration column: a file name under the suite's
                                 calib/ folder or an absolute path; "" = the command's table */
    char gpu[32];             /* optional gpu column as llm-foundry's tables write it (h100_80gb,
                                 a100_80gb, ...); "" = not stated. A row on another GPU than the
                                 command's table stands for, with no calibration column, is not
                                 reproducible (never priced as an H100) */
    char precision[24];       /* optional precision column (amp_bf16, bf16, fp16, amp_fp8, ...); the
                                 cost model's rates are 16-bit: an fp8 or fp32 row is not
                                 reproducible */
} FidRun;

typedef struct FidResultS {
    FidRun run;
    int ok;                   /* predicted; else why says why not */
    char why[512];
    double tps_pred;          /* tokens/s/GPU */
    double err;               /* tps_pred / tps_pub - 1 */
    double mfu_pred, hfu_pred;/* the published table's convention (run.flops); under megatron-eq3
                                 both are eq. (3), which already counts the recomputation */
    double step_s;            /* simulated step */
    double gemm_s, attn_s, mem_s, opt_s, slowed_s, exposed_comm_s; /* per step, mean rank */
    uint32_t micro_batches;
    double params_ours;       /* the preset's parameter count at this sequence length */
    double tp_comm_s, bubble_s, p2p_s; /* per step, mean worker: exposed TP collectives, pipeline
                                 bubble (idle) and stage-to-stage transfers */
    double state_bytes, act_bytes, gpu_bytes; /* per GPU: weights + gradients + Adam states (the
                                 fullest stage's), the activations one micro-batch keeps for
                                 backward at the peak, and the GPU's memory (replay's estimate:
                                 no allocator slack, workspaces or gathered FSDP units) */
    char calib_name[128];     /* the calibration the row ran under */
} FidResult;

/* The largest global batch a row may have, in sequences: 2^24 (the published runs' largest is
 * 16,384); its fixed-length trace holds every sequence, so a larger one is not reproducible. */
#define FID_MAX_GLOBAL_BATCH 16777216u
/* The largest all-to-all the collective table prices: sim/net costs it from its n x n list of
 * messages (2048 GPUs: 4.2 M messages, 64 MiB), so a larger one is not reproducible. */
#define FID_MAX_A2A_GPUS 2048u

/* What takes the largest part of a predicted step (mean rank): GEMMs, attention kernels,
 * memory-bound kernels, communication not hidden (FSDP/DDP, TP, pipeline transfers), the
 * pipeline bubble or the optimizer. Grouping the errors by it says which part of a calibration
 * to measure first. -1 for a row that was not predicted. */
enum { FID_DOM_GEMM, FID_DOM_ATTN, FID_DOM_MEM, FID_DOM_COMM, FID_DOM_BUBBLE, FID_DOM_OPT, FID_N_DOM };
int fid_dominant(const struct FidResultS *r);
const char *fid_dominant_name(int d);

/* Read the runs table (CSV, or a .md file's markdown pipe tables; csv.h); errors name the file,
 * line and column. *runs is malloc'd. fid_read_runs_md also gives how many of a markdown file's
 * tables had another header and were left out (0 for CSV). */
OsStatus fid_read_runs(FidRun **runs, size_t *n, const char *path);
OsStatus fid_read_runs_md(FidRun **runs, size_t *n, size_t *skipped_tables, const char *path);

/* The calibration tables a set of rows names, each loaded (and validated) once. */
typedef struct FidCalibs FidCalibs;
/* Load every distinct `calibration` of runs[n], resolved against dir (a name) or as given (an
 * absolute path). A file that cannot be loaded fails with its error, naming the runs file's line
 * (runs_path). *out is NULL-safe to destroy. */
OsStatus fid_calibs_load(FidCalibs **out, const FidRun *runs, size_t n, const char *dir, const char *runs_path);
/* The table loaded for a row's calibration column, or NULL. Borrowed from c. */
const Calib *fid_calibs_get(const FidCalibs *c, const char *calibration);
void fid_calibs_destroy(FidCalibs *c);
/* The path a calibration column resolves to: absolute as given, else dir/name. */
void fid_calib_path(char *out, size_t cap, const char *calibration, const char *dir);

typedef struct {
    const char *models_dir;   /* where <model>.model preset files live (besides built-ins); may be NULL */
    const char *traces_dir;   /* where the fixed-length traces are written (created) */
    const Calib *calib;       /* borrowed: the table of rows without a calibration column */
    const char *calib_dir;    /* where a row's calibration name resolves (NULL: the working folder) */
    const FidCalibs *calibs;  /* borrowed, may be NULL: rows' tables loaded once; else fid_predict
                                 loads a row's own table each call */
    uint64_t steps;           /* steps per trace (>= 1) */
} FidOptions;

/* FLOPs one token counts under a convention (FidFlops) for the model m at sequence length seq
 * (num_params: the table's N for palm; NaN = the model's own count). A published FLOP/s per GPU
 * over this is the published tokens/s/GPU. */
double fid_flops_per_token(int flops, const ModelSpec *m, uint32_t seq, double num_params);

/* Predict one run. A row that cannot be built (unknown model, a batch that does not divide,
 * a configuration the simulator rejects) gives ok = 0 and the reason in why, never a status:
 * the table keeps every row. Returns non-OK only for I/O failures of the traces folder or a
 * row's calibration file that cannot be loaded (without o->calibs). */
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
