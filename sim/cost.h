/* cost.h — what a rank's share of a phase costs: FLOPs and time on one GPU.
 * Implements: the per-layer FLOP formula of DESIGN.md §2 (QKV with GQA, output projection,
 *   MLP, attention scores+values; forward+backward = 3x forward, recomputation +1 forward),
 *   attention per item (encoders) / per example (LLM) — never over a packed buffer — or
 *   padded b*max_len batches; time = FLOPs / achieved rate from a calibration table keyed by
 *   work size; MFU numerators (paper convention, causal-aware, hardware).
 * Does not: know about ranks, networks or policies. Files: cost.c (FLOPs, time), calib.c (table).
 * Source: REFERENCE.md §D.1 (PaLM/Megatron conventions), §D.4 (H100 peak and achieved rates). */
#ifndef OS_COST_H
#define OS_COST_H

#include <stdint.h>

#include "base/status.h"
#include "sim/model.h"

#define CALIB_MAX_POINTS 64
#define CALIB_MAX_META 16

/* Achieved-rate table. Rates are FLOP/s; lookups interpolate in log(rate) vs log(size)
 * (a power law between points: then a GEMM's time F/rate(F) never falls as F grows whenever
 * it does not fall at the table's points) and clamp at both ends. Implemented in calib.c. */
typedef struct {
    char name[128];          /* "builtin-h100-sxm-default", or the file's name (else its path) */
    char device[128];        /* device it was measured on */
    double peak_flops;       /* dense bf16 peak per GPU, FLOP/s (989.4e12, REFERENCE §D.4) */
    uint32_t n_gemm;
    double gemm_flops[CALIB_MAX_POINTS]; /* key: FLOPs of one GEMM call (2*M*K*N), ascending */
    double gemm_rate[CALIB_MAX_POINTS];  /* achieved FLOP/s */
    uint32_t n_attn;
    double attn_len[CALIB_MAX_POINTS];   /* key: sequence length, ascending */
    double attn_rate[CALIB_MAX_POINTS];  /* achieved FLOP/s counting the FLOPs actually executed */
    double kernel_overhead_s;            /* fixed launch cost per layer per pass, seconds */
    /* optional measured network figures (0 = not measured; the cluster defaults apply) */
    double intra_bw, inter_bw;           /* bytes/s per direction per GPU */
    /* free-text provenance kept from the file (clock_mhz, cuda_version, cublas_version,
     * nccl_version, driver, ...): [n_meta] key/value pairs, written back by calib_save */
    uint32_t n_meta;
    char meta_key[CALIB_MAX_META][32];
    char meta_val[CALIB_MAX_META][128];
} Calib;

/* The documented default for H100 SXM (estimates; see calib.c for each number's source). */
void calib_default_h100(Calib *c);
/* Read / write the text format written by `orchsim calibrate` (documented in calib.c and
 * sim/README-models.md). Load validates every row (file + line in errors); save validates,
 * then writes atomically (temp + rename). */
OsStatus calib_load(Calib *c, const char *path);
OsStatus calib_save(const Calib *c, const char *path);
/* Check a table: peak > 0, >= 1 row of each kind, keys ascending, rates in (0, peak], and a
 * GEMM's time (F/rate) not falling from one row to the next. where names it in errors. */
OsStatus calib_validate(const Calib *c, const char *where);
/* Set (or replace) a free-text provenance entry; key: [a-z0-9_]+, < 32 chars. */
OsStatus calib_set_meta(Calib *c, const char *key, const char *value);
/* The value of a provenance entry, or NULL. Borrowed from c. */
const char *calib_get_meta(const Calib *c, const char *key);
double calib_gemm_rate(const Calib *c, double gemm_flops);
double calib_attn_rate(const Calib *c, double seq_len);

typedef enum { ATTN_VARLEN = 0, ATTN_PADDED = 1 } AttnLayout;

/* Optional memo of attention rates by integer length (direct-mapped): the replay costs
 * ~10^5 units a step and each lookup is a log-log interpolation. Caller-owned, zeroed. */
#define COST_MEMO_SLOTS 8192
typedef struct {
    uint32_t key[COST_MEMO_SLOTS]; /* length + 1; 0 = empty */
    double rate[COST_MEMO_SLOTS];
} CostMemo;

typedef struct {
    const ModelSpec *model; /* borrowed */
    const Calib *calib;     /* borrowed */
    int recompute;          /* full activation recomputation: +1 forward in backward */
    AttnLayout layout;      /* varlen (sum len^2) or padded (b * max_len) */
    CostMemo *memo;         /* may be NULL; never changes results, only speed */
} CostModel;

/* Phase numbering: p < model->n_enc is encoder p; p == n_enc is the LLM backbone. */
static inline uint32_t cost_n_phases(const ModelSpec *m) { return m->n_enc + 1; }

/* Forward FLOPs of one sequence of n positions through a stack, split in the linear part
 * (2 * n * layer_params * layers, + LM head when vocab > 0) and attention
 * (4 * n^2 * hidden * layers, no causal discount). */
typedef struct {
    double linear, attn;
} Flops;
Flops stack_forward_flops(const StackSpec *s, double n);

/* What one rank's share of one phase costs. lens: [n] unit lengths — for an encoder phase
 * the items' positions (before pad_to/ratio), for the LLM phase the examples' sequence
 * lengths S (text + projected items). */
typedef struct {
    double fwd_s, bwd_s;      /* seconds on one GPU, as executed (causal skip, padding,
                                 recomputation, kernel overheads) */
    double model_flops;       /* paper convention: 6*params*tokens + 12*L*h*n^2, real tokens */
    double model_flops_noattn;/* the same without the attention term */
    double causal_flops;      /* model FLOPs with causal attention halved */
    double hw_flops;          /* FLOPs executed: padding and recomputation included */
    uint64_t tokens;          /* real positions processed (encoder) / LLM tokens */
} PhaseCost;

OsStatus cost_phase(PhaseCost *out, const CostModel *cm, uint32_t phase, const uint32_t *lens,
                    uint32_t n);
/* Slow reference twin of cost_phase (STYLE habit 6): walks every layer of every pass and
 * every unit, one kernel at a time. Same results up to rounding; for tests. */
OsStatus cost_phase_ref(PhaseCost *out, const CostModel *cm, uint32_t phase,
                        const uint32_t *lens, uint32_t n);
/* The balancers' per-unit objective: t(len) ~= a*len + c*len^2 seconds (fwd+bwd, incl.
 * recomputation), with the rates of a large packed batch (a rank's GEMMs are big) and the
 * attention rate at len; pad_to applies for encoders. a: linear s/position, c: s/position^2. */
void cost_unit_coeffs(const CostModel *cm, uint32_t phase, double *a, double *c);
double cost_unit_seconds(const CostModel *cm, uint32_t phase, uint32_t len);
/* The same with the per-phase GEMM parts computed once (cost_unit_prepare), for callers that
 * price many units of one phase: cost_unit_eval(u, len) == cost_unit_seconds(cm, phase, len). */
typedef struct {
    const CostModel *cm; /* borrowed */
    uint32_t phase;
    double as, ap, cf, passes;
} CostUnit;
void cost_unit_prepare(CostUnit *u, const CostModel *cm, uint32_t phase);
double cost_unit_eval(const CostUnit *u, uint32_t len);
/* LLM tokens an item of encoder e contributes: ceil(len / ratio) of its REAL positions
 * (padding to pad_to is encoder work only; padded outputs are dropped, not spliced in). */
uint32_t cost_item_llm_tokens(const ModelSpec *m, uint32_t e, uint32_t len);
/* Positions encoder e actually runs for an item of len real positions: max(len, pad_to). */
uint32_t cost_item_enc_len(const ModelSpec *m, uint32_t e, uint32_t len);

#endif
