/* stage.h — pipelines of forward-only text-to-image stages, and what one request costs in one.
 * Implements: the stage-kind registry (caption, interrogate, generate, decode, score), the
 *   pipeline file format (key = value sections, documented in stage.c and
 *   sim/diffusion/README.md) with its built-in pipelines (cpdm, t2i, cpdm-unlearn), the stage
 *   graph's order and its cycle check; a request's effective fields (the trace's /requests row,
 *   else the stage's defaults), checked with file, row and field in every error; and its cost in
 *   a stage (StageCoster: op lists and batch times cached per model, resolution and batch).
 * Does not: deal requests to ranks or balance them (pipesim.h), or read traces (traces/).
 * Source: ../shared/CPDM.md "The pipeline"; DESIGN.md §9. Time: seconds; FLOPs = 2 x MACs. */
#ifndef OS_DIFFUSION_STAGE_H
#define OS_DIFFUSION_STAGE_H

#include <stdint.h>

#include "base/status.h"
#include "sim/cost.h"
#include "sim/diffusion/dmodel.h"
#include "traces/requests.h"

#define PIPE_MAX_STAGES 8
#define PIPE_NAME_LEN 32

typedef enum { STG_CAPTION = 0, STG_INTERROGATE, STG_GENERATE, STG_DECODE, STG_SCORE, STG_N_KINDS } StageKind;
/* How a stage waits for its inputs: every rank for every predecessor (barrier), or each rank for
 * its own predecessors' outputs and those of the ranks that send it requests (stream). */
typedef enum { SYNC_BARRIER = 0, SYNC_STREAM = 1 } StageSync;

typedef struct {
    char name[PIPE_NAME_LEN];
    StageKind kind;
    const DiffModel *model;   /* caption: captioner; interrogate: text tower; generate: denoiser
                                 (a request's own model wins); decode: VAE; score: image tower */
    const DiffModel *aux;     /* interrogate: image tower; generate: text encoder (the
                                 denoiser's own unless given); score: CNN (may be NULL) */
    uint32_t batch;           /* per GPU per call: images (generate, decode, score), candidate
                                 prompts (interrogate), captions (caption) */
    /* defaults for requests whose trace has no value */
    uint32_t images, steps, width, height, iters, candidates;
    double cfg;               /* guidance scale >= 1; > 1 runs the UNet twice per step */
    StageSync sync;
    uint32_t n_after, after[PIPE_MAX_STAGES]; /* predecessor stage indices */
    int line;                 /* the section's line in the pipeline file */
    uint8_t trace_fields;     /* 1: a request's trace fields win over these defaults (`trace_fields
                                 = use`, the default); 0: `ignore` */
} Stage;

typedef struct {
    char name[64];
    char where[512];          /* the file, or "builtin:<name>" */
    uint32_t n;
    Stage st[PIPE_MAX_STAGES];
    uint32_t order[PIPE_MAX_STAGES]; /* a topological order of st[] */
} Pipeline;

const char *stage_kind_name(StageKind k);
uint32_t pipe_builtin_count(void);
const char *pipe_builtin_name(uint32_t i);
const char *pipe_builtin_text(uint32_t i); /* the built-in's pipeline file text */
/* A built-in name, else a file path. Errors name the file, the line and the key. */
OsStatus pipe_load(Pipeline *p, const char *name_or_path);
/* Parse pipeline-file text; where names it in errors. */
OsStatus pipe_parse(Pipeline *p, const char *text, const char *where);

/* A request's fields as one stage sees them. */
typedef struct {
    const DiffModel *model;   /* generate: the denoiser */
    uint32_t width, height, images, steps, iters;
    double cfg;
} ReqFields;
/* Resolve request `row` (r may be NULL or empty: the stage's defaults) for stage s: the model
 * must be a denoiser preset, its resolution a multiple of the model's (and the VAE's 8),
 * images and steps >= 1, cfg >= 1. trace names the file in errors:
 *   "<trace>: /requests[<row>].width: ...". */
OsStatus stage_resolve(ReqFields *f, const Stage *s, const T2iRequests *r, uint64_t row, const char *trace);

typedef struct {
    double seconds;           /* forward (or forward + backward when training) on one GPU */
    double bwd_seconds;       /* training: the backward's part of seconds (0 for inference) */
    double model_flops;       /* 2 x the multiply-adds of the request's work (the analytic count) */
    double exec_flops;        /* FLOPs executed (causal halving, backward when training) */
    uint32_t tokens;          /* positions its main model processes (a balancer's length) */
    uint64_t in_bytes;        /* what moves when the request changes rank before this stage */
    uint64_t images;          /* images generated / decoded / scored */
} ReqCost;

typedef struct StageCoster StageCoster;
OsStatus stage_coster_create(StageCoster **out, const Calib *calib);
void stage_coster_destroy(StageCoster *c);
/* What request f costs in stage s. train: the denoiser's forward + backward on every image at
 * one noise level (fine-tuning), the text encoder forward only (frozen). */
OsStatus stage_request_cost(ReqCost *out, StageCoster *c, const Stage *s, const ReqFields *f, int train);

#endif
